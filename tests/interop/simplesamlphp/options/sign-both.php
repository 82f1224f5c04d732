<?php
// Signed Response and signed Assertion (the 1.19 default).
return [
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
];
