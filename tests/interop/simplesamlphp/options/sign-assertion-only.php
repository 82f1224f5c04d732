<?php
// Unsigned Response, signed Assertion.
return [
    'saml20.sign.response' => false,
    'saml20.sign.assertion' => true,
];
