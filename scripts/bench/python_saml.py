"""python3-saml's side of scripts/bench-http: validates the bench's minted
responses with OneLogin_Saml2_Response(...).is_valid(), strict, on the same
SP settings (entity ID, ACS URL as destination and recipient, audience, time
window, signed assertion required), in one worker process per core, and
prints validations per second. Exits 1 if any response is refused: the
comparison is only fair if both sides accept the same responses."""

import multiprocessing
import os
import sys
import time

from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

IDP = "https://idp.bench.test/saml"


def settings(folder, port):
    with open(os.path.join(folder, "idp.crt")) as f:
        cert = "".join(l for l in f.read().splitlines() if "CERTIFICATE" not in l)
    url = f"http://127.0.0.1:{port}"
    return OneLogin_Saml2_Settings(
        {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": f"{url}/saml/metadata",
                "assertionConsumerService": {
                    "url": f"{url}/saml/acs",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                },
                "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            },
            "idp": {
                "entityId": IDP,
                "singleSignOnService": {
                    "url": "https://idp.bench.test/sso",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                },
                "x509cert": cert,
            },
            "security": {
                "wantAssertionsSigned": True,
                "wantMessagesSigned": False,
                "rejectDeprecatedAlgorithm": True,
            },
        }
    )


def validate(job):
    folder, port, responses = job
    s = settings(folder, port)
    refused = 0
    for b64 in responses:
        request = {
            "https": "off",
            "http_host": "127.0.0.1",
            "server_port": str(port),
            "script_name": "/saml/acs",
            "get_data": {},
            "post_data": {"SAMLResponse": b64},
        }
        r = OneLogin_Saml2_Response(s, b64)
        if not r.is_valid(request):
            refused += 1
            if refused == 1:
                print("python3-saml refused a response:", r.get_error(), file=sys.stderr)
    return refused


def main():
    folder, port, count, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    with open(os.path.join(folder, "responses.txt")) as f:
        responses = [l.strip() for l in f if l.strip()][:count]
    jobs = [(folder, port, responses[w::workers]) for w in range(workers)]
    with multiprocessing.Pool(workers) as pool:
        pool.map(validate, [(folder, port, responses[:2])] * workers)  # imports, warm-up
        start = time.perf_counter()
        refused = sum(pool.map(validate, jobs))
        secs = time.perf_counter() - start
    rate = len(responses) / secs
    print(f"python3-saml: {len(responses)} validations in {secs:.2f} s, {rate:.0f}/s ({workers} processes), {refused} refused")
    with open(os.path.join(folder, "python.txt"), "w") as f:
        f.write(f"python_rate={rate:.0f}\n")
    sys.exit(1 if refused else 0)


if __name__ == "__main__":
    main()
