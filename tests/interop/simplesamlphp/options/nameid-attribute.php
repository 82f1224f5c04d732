<?php
// NameID = the user's ENTPersonJointure attribute, Format unspecified (simplesaml.nameidattribute only applies to a format no authproc filter produced).
return [
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    'simplesaml.nameidattribute' => 'ENTPersonJointure',
];
