<?php
// Require signed LogoutRequest/LogoutResponse from the SP (checked against its signing certificate).
return [
    'validate.logout' => true,
];
