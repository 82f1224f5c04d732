<?php
// Transient NameID (a new random value on every login).
return [
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
];
