<?php
/*
 * Error page of the test IdP (config 'errors.show_function'; copied to
 * WORKDIR/config/harness-errors.php by ../start).
 *
 * SimpleSAMLphp 1.19's own error page answers HTTP 200 (Error::show() hands
 * the status to a Template that show() never sends), so a script cannot tell
 * an error from a page. With errors.show_function, Error::show() calls
 * http_response_code() first (400/403/500 ...), then this function, which
 * prints a short text/plain report: the error code, the message, the cause
 * chain and the track ID (to grep WORKDIR/log/simplesamlphp.log).
 */
final class JointureHarnessErrors
{
    public static function show(\SimpleSAML\Configuration $config, array $data): void
    {
        header('Content-Type: text/plain; charset=utf-8');
        header('X-Harness-Error: ' . preg_replace('/[^A-Za-z0-9_:.-]/', '', (string) $data['errorCode']));
        $e = $data['error'];
        echo 'SimpleSAMLphp error ', $data['errorCode'], "\n";
        echo $e['exceptionMsg'] ?? '', "\n";
        echo $e['exceptionTrace'] ?? '', "\n";
        echo 'track ID: ', $e['trackId'] ?? '', "\n";
    }
}
