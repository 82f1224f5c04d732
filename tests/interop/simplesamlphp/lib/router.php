<?php
/*
 * Router for `php -S` (copied to WORKDIR/router.php by ../start).
 *
 * The document root WORKDIR/www holds one symlink, simplesaml ->
 * /usr/share/simplesamlphp/www, so /simplesaml/... maps onto SimpleSAMLphp's
 * www/ directory. Returning false hands the request back to the built-in
 * server, which then finds the script (e.g. /simplesaml/module.php), sets
 * SCRIPT_NAME/SCRIPT_FILENAME/PATH_INFO (/core/loginuserpass.php), chdirs to
 * the script's directory (SimpleSAMLphp's scripts require '../../_include.php'
 * relative to it) and serves static assets. Everything outside /simplesaml/
 * is a 404, so a stray request can never run anything else.
 */

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';

if ($path === '/simplesaml') {
    header('Location: /simplesaml/', true, 301);
    return true;
}
if (strncmp($path, '/simplesaml/', 12) === 0) {
    return false;
}
http_response_code(404);
header('Content-Type: text/plain');
echo "not found (this is the SimpleSAMLphp test IdP; everything lives under /simplesaml/)\n";
return true;
