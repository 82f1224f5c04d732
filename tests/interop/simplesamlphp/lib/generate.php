<?php
/*
 * Writes the SimpleSAMLphp configuration of one test IdP instance.
 * Called by ../start:
 *   php generate.php SSP_DIR WORKDIR PORT SP_METADATA_FILE [OPTIONS_FILE [IDP_ENTITY_ID]]
 * (an empty OPTIONS_FILE or IDP_ENTITY_ID means none / the default).
 *
 * Writes WORKDIR/config/{config.php,authsources.php} and
 * WORKDIR/metadata/{saml20-idp-hosted.php,saml20-sp-remote.php}.
 * The SP-remote entries are parsed from SP_METADATA_FILE with SimpleSAMLphp's
 * own metadata parser (SAMLParser::parseDescriptorsFile + getMetadata20SP),
 * then OPTIONS_FILE (a PHP file returning an array) is merged over them.
 * Every value is written with var_export, so nothing needs escaping.
 */

declare(strict_types=1);

function fail(string $msg): void
{
    fwrite(STDERR, "simplesamlphp harness: $msg\n");
    exit(2);
}

if ($argc < 5 || $argc > 7) {
    fail('usage: generate.php SSP_DIR WORKDIR PORT SP_METADATA_FILE [OPTIONS_FILE [IDP_ENTITY_ID]]');
}
[, $sspDir, $wd, $port, $spMetadataFile] = $argv;
$optionsFile = $argv[5] ?? '';
$idpEntityIdArg = $argv[6] ?? '';
$harnessDir = dirname(__DIR__);

if (!ctype_digit($port)) {
    fail("PORT must be a number, got '$port'");
}
$port = (int) $port;
if (!is_file($spMetadataFile)) {
    fail("SP metadata file not found: $spMetadataFile");
}

$baseUrl = "http://127.0.0.1:$port/simplesaml/";
// The metadata URL by default (what a real SimpleSAMLphp IdP uses). Any
// other name works too: the hosted entry is found by 'host' => '__DEFAULT__'.
$idpEntityId = $idpEntityIdArg !== '' ? $idpEntityIdArg : $baseUrl . 'saml2/idp/metadata.php';

/* ---- SP metadata: parsed with SimpleSAMLphp's own parser -------------- */

require_once $sspDir . '/lib/_autoload.php';

$xml = file_get_contents($spMetadataFile);
if ($xml === false || trim($xml) === '') {
    fail("SP metadata file is empty: $spMetadataFile");
}
try {
    // An EntityDescriptor or an EntitiesDescriptor (then every SP in it).
    $entities = \SimpleSAML\Metadata\SAMLParser::parseDescriptorsString($xml);
} catch (\Throwable $e) {
    fail("cannot parse SP metadata $spMetadataFile: " . $e->getMessage());
}

$options = [];
if ($optionsFile !== '') {
    if (!is_file($optionsFile)) {
        fail("options file not found: $optionsFile");
    }
    $options = require $optionsFile;
    if (!is_array($options)) {
        fail("options file must return an array: $optionsFile");
    }
}
// '_idp' => [...] is merged over the IdP-hosted entry instead.
$idpOptions = $options['_idp'] ?? [];
unset($options['_idp']);

/* array_replace at the top level, where a null value removes the key. */
function merge_options(array $base, array $over): array
{
    foreach ($over as $k => $v) {
        if ($v === null) {
            unset($base[$k]);
        } else {
            $base[$k] = $v;
        }
    }
    return $base;
}

// Harness defaults under what the SP metadata says.
$spDefaults = [
    // 1.19 does not sign the LogoutRequest/LogoutResponse it sends over
    // HTTP-Redirect unless sign.logout (or redirect.sign) is true
    // (modules/saml/lib/Message.php addRedirectSign). An SP that verifies
    // logout messages needs them signed. Set it here, on the SP entry, so an
    // options file can turn it off: the IdP-hosted value would win.
    'sign.logout' => true,
];

$spRemote = [];
foreach ($entities as $entityId => $parser) {
    $sp = $parser->getMetadata20SP();
    if ($sp === null) {
        continue; // not an SP (e.g. an IdP in an EntitiesDescriptor)
    }
    unset($sp['entityDescriptor']); // base64 copy of the XML, not needed
    $sp = merge_options(array_replace($spDefaults, $sp), $options);
    $spRemote[$entityId] = $sp;
}
if (count($spRemote) === 0) {
    fail("no SAML 2.0 SPSSODescriptor in $spMetadataFile");
}

/* ---- config.php -------------------------------------------------------- */

$config = [
    'baseurlpath' => $baseUrl,
    'certdir' => "$wd/cert/",
    'loggingdir' => "$wd/log/",
    'datadir' => "$wd/data/",
    'tempdir' => "$wd/tmp",
    'metadatadir' => "$wd/metadata/",
    'attributenamemapdir' => "$wd/attributemap/",
    'metadata.sources' => [['type' => 'flatfile', 'directory' => "$wd/metadata"]],
    'metadata.sign.enable' => false,

    'technicalcontact_name' => 'jointure interop tests',
    'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC',

    // Fixed on purpose: persistent NameIDs (sha1 over the salt) stay the same
    // across runs and machines, so tests can hard-code them if they want.
    'secretsalt' => 'jointure-interop-simplesamlphp-fixed-salt-8d2f6c',
    'auth.adminpassword' => 'admin',
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,

    // null = no check of RelayState/ReturnTo hosts. The 1.19 default [] only
    // allows the IdP's own host:port (Utils/HTTP.php checkURLAllowed), which
    // would refuse the SP's ReturnTo on another port.
    'trusted.url.domains' => null,
    'trusted.url.regex' => false,
    'enable.http_post' => false,
    'assertion.allowed_clock_skew' => 180,

    'debug' => ['saml' => true, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,
    // Errors answer with their HTTP status and a text/plain report (lib/errors.php).
    'errors.show_function' => ['JointureHarnessErrors', 'show'],

    'logging.level' => \SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'logging.processname' => 'simplesamlphp',
    'statistics.out' => [],

    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,

    'module.enable' => [
        'core' => true,
        'saml' => true,
        'exampleauth' => true,
        'admin' => true,
    ],

    'session.duration' => 8 * 60 * 60,
    'session.datastore.timeout' => 4 * 60 * 60,
    'session.state.timeout' => 60 * 60,
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.lifetime' => 0,
    // The SP may live on the same host (127.0.0.1, another port: cookies do
    // not care about ports); keep the IdP's cookies off the SP's paths.
    'session.cookie.path' => '/simplesaml/',
    'session.cookie.domain' => null,
    'session.cookie.secure' => false, // plain http
    'session.cookie.samesite' => null,
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.savepath' => "$wd/sessions",
    'session.phpsession.httponly' => true,
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'session.rememberme.enable' => false,

    'language.available' => ['en', 'fr', 'nl'],
    'language.default' => 'en',
    'language.rtl' => [],
    'language.parameter.name' => 'language',
    'language.cookie.name' => 'language',
    'language.cookie.path' => '/simplesaml/',

    'usenewui' => false,
    'theme.use' => 'default',
    'template.auto_reload' => false,
    'production' => false,

    'authproc.idp' => [],
    'authproc.sp' => [],

    'store.type' => 'phpsession',
];

/* ---- authsources.php --------------------------------------------------- */

$users = require $harnessDir . '/users.php';
$authsources = [
    'admin' => ['core:AdminPassword'],
    'test-users' => array_merge(['exampleauth:UserPass'], $users),
];

/* ---- saml20-idp-hosted.php --------------------------------------------- */

$idp = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key',
    'certificate' => 'idp.crt',
    'auth' => 'test-users',

    // 1.19's default already (modules/saml/lib/Message.php addSign), stated.
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',

    // First one = the format sent when neither the AuthnRequest's
    // NameIDPolicy nor the SP entry's NameIDFormat asks for another.
    'NameIDFormat' => [
        'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
        'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
    ],
    'SingleSignOnServiceBinding' => [
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
    ],
    'SingleLogoutServiceBinding' => [
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
    ],
    'logouttype' => 'traditional',

    'authproc' => [
        // Offer a transient and a persistent NameID for every login; the
        // assertion carries the one asked for (AuthnRequest NameIDPolicy,
        // else the SP entry's NameIDFormat, else the first above).
        10 => ['class' => 'saml:TransientNameID'],
        // sha1(salt, IdP entity ID, SP entity ID, uid): stable per user and SP.
        11 => ['class' => 'saml:PersistentNameID', 'attribute' => 'uid', 'NameQualifier' => true],
    ],
];
$idp = merge_options($idp, $idpOptions);

/* ---- write -------------------------------------------------------------- */

function write_php(string $path, string $body): void
{
    $text = "<?php\n// Generated by tests/interop/simplesamlphp/start; rewritten on every start.\n" . $body;
    $tmp = $path . '.tmp';
    if (file_put_contents($tmp, $text) === false || !rename($tmp, $path)) {
        fail("cannot write $path");
    }
}

write_php(
    "$wd/config/config.php",
    "require_once __DIR__ . '/harness-errors.php';\n" . '$config = ' . var_export($config, true) . ";\n"
);
write_php("$wd/config/authsources.php", '$config = ' . var_export($authsources, true) . ";\n");
write_php(
    "$wd/metadata/saml20-idp-hosted.php",
    '$metadata[' . var_export($idpEntityId, true) . '] = ' . var_export($idp, true) . ";\n"
);
$body = '';
foreach ($spRemote as $entityId => $sp) {
    $body .= '$metadata[' . var_export($entityId, true) . '] = ' . var_export($sp, true) . ";\n";
}
write_php("$wd/metadata/saml20-sp-remote.php", $body);

// For the caller (start): the IdP entity ID, then the SP entity IDs.
echo $idpEntityId, "\n";
foreach (array_keys($spRemote) as $entityId) {
    echo $entityId, "\n";
}
