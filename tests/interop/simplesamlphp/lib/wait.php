<?php
/*
 * Waits until the test IdP answers its metadata URL with 200, then writes the
 * XML to OUT_FILE. Called by ../start:
 *   php wait.php URL SERVER_PID OUT_FILE TIMEOUT_SECONDS EXPECTED_ENTITY_ID
 * Exit 0 when ready; 1 on timeout, when the server died, on a SimpleSAMLphp
 * error page, or on a wrong answer.
 */

declare(strict_types=1);

[, $url, $pid, $out, $timeout, $entityId] = $argv;
$deadline = microtime(true) + (float) $timeout;
$last = 'no answer yet';

while (microtime(true) < $deadline) {
    if (!file_exists("/proc/$pid")) {
        fwrite(STDERR, "php server (pid $pid) exited\n");
        exit(1);
    }
    $ctx = stream_context_create(['http' => [
        'timeout' => 2,
        'ignore_errors' => true,   // give us the body of a 500 too
        'follow_location' => 0,
    ]]);
    $body = @file_get_contents($url, false, $ctx);
    // $http_response_header is set by file_get_contents in this scope.
    if ($body !== false && isset($http_response_header[0])) {
        $status = $http_response_header[0];
        if (preg_match('#^HTTP/\S+ 200#', $status)) {
            if (strpos($body, 'entityID="' . htmlspecialchars($entityId, ENT_QUOTES) . '"') === false) {
                fwrite(STDERR, "metadata at $url is not ours (expected entityID $entityId):\n"
                    . substr($body, 0, 500) . "\n");
                exit(1);
            }
            if (file_put_contents($out, $body) === false) {
                fwrite(STDERR, "cannot write $out\n");
                exit(1);
            }
            exit(0);
        }
        $last = $status . ': ' . substr(strip_tags($body), 0, 300);
        // A SimpleSAMLphp error page (lib/errors.php): the configuration is
        // wrong and waiting will not fix it.
        foreach ($http_response_header as $h) {
            if (stripos($h, 'X-Harness-Error:') === 0) {
                fwrite(STDERR, "$url answered $status:\n" . substr($body, 0, 3000) . "\n");
                exit(1);
            }
        }
    }
    usleep(50000);
}
fwrite(STDERR, "timed out after {$timeout}s waiting for $url ($last)\n");
exit(1);
