<?php
// Nothing signed (an SP must refuse it).
return [
    'saml20.sign.response' => false,
    'saml20.sign.assertion' => false,
];
