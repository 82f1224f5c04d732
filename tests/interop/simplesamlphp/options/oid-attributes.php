<?php
// Attributes named by urn:oid (core:AttributeMap with SimpleSAMLphp's name2oid and the harness's educonnect2oid) with NameFormat uri. Names without an OID in name2oid (ENTPersonJointure, ENTStructureUAI, ...) are sent unchanged.
return [
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'authproc' => [
        90 => ['class' => 'core:AttributeMap', 'name2oid', 'educonnect2oid'],
    ],
];
