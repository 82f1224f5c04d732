<?php
// Send LogoutRequests unsigned (the 1.19 default; the harness otherwise sets sign.logout).
return [
    'sign.logout' => false,
];
