<?php
// EncryptedID instead of NameID (rsa-oaep-mgf1p + aes128-cbc); the LogoutRequest's NameID is encrypted too.
return [
    'nameid.encryption' => true,
];
