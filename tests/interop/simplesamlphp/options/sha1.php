<?php
// RSA-SHA1 signatures (and SHA-1 digests: 1.19 takes the digest from the signature algorithm). An SP must refuse it.
return [
    'signature.algorithm' => 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
];
