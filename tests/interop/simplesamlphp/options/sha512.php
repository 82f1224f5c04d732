<?php
// RSA-SHA512 signatures (and SHA-512 digests).
return [
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
];
