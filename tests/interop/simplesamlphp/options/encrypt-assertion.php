<?php
// EncryptedAssertion (rsa-oaep-mgf1p key transport to the SP's encryption certificate, aes128-cbc data) in a signed Response; the assertion inside is signed too.
return [
    'assertion.encryption' => true,
];
