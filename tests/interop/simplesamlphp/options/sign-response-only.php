<?php
// Signed Response, unsigned Assertion.
return [
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => false,
];
