<?php
// Persistent NameID: sha1(secretsalt, IdP entity ID, SP entity ID, uid), by saml:PersistentNameID.
return [
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
];
