<?php
// Accept unsigned AuthnRequests even when the SP metadata says AuthnRequestsSigned="true".
return [
    'validate.authnrequest' => false,
];
