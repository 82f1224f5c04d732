"""A scripted browser for the SimpleSAMLphp test IdP (Python 3 stdlib only).

Called through ../login and ../logout; see those for the usage. It follows
redirects itself (never POSTing anything to the SP), keeps cookies in an
http.cookiejar (optionally saved to a file so that `logout` finds the IdP
session `login` made), fills the exampleauth login form (username, password
and the hidden AuthState), and prints what the browser would send to the SP as
one JSON object on stdout. Errors go to stderr as text and to stdout as JSON
with an "error" key; the exit code is then 1 (2 for bad usage).
"""

import argparse
import base64
import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from html.parser import HTMLParser

MAX_STEPS = 25
TIMEOUT = 20


class Fail(Exception):
    pass


# ---------------------------------------------------------------- HTTP ----

class _NoErrors(urllib.request.HTTPErrorProcessor):
    """Hand every response (3xx, 4xx, 5xx) back as is: we follow redirects
    ourselves, so that we can stop before anything reaches the SP."""

    def http_response(self, request, response):
        return response

    https_response = http_response


class Browser:
    def __init__(self, cookie_file=None):
        self.cookie_file = cookie_file
        self.jar = http.cookiejar.LWPCookieJar(cookie_file) if cookie_file else http.cookiejar.CookieJar()
        if cookie_file:
            try:
                self.jar.load(ignore_discard=True, ignore_expires=True)
            except FileNotFoundError:
                pass
            except (http.cookiejar.LoadError, OSError) as e:
                raise Fail(f"cannot read cookie jar {cookie_file}: {e}")
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # never a proxy: everything is local
            urllib.request.HTTPCookieProcessor(self.jar),
            _NoErrors(),
        )

    def save(self):
        if self.cookie_file:
            self.jar.save(ignore_discard=True, ignore_expires=True)

    def request(self, url, data=None):
        """One request, no redirect following. Returns (status, headers, body text, url)."""
        body = None
        headers = {"User-Agent": "jointure-interop-saml-client/1", "Accept": "text/html,*/*"}
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(url, data=body, headers=headers, method="POST" if data is not None else "GET")
        try:
            with self.opener.open(req, timeout=TIMEOUT) as resp:
                raw = resp.read()
                status = resp.status
                hdrs = resp.headers
        except urllib.error.URLError as e:
            raise Fail(f"request to {url} failed: {e.reason}")
        charset = hdrs.get_content_charset() or "utf-8"
        return status, hdrs, raw.decode(charset, errors="replace"), url


# ---------------------------------------------------------------- HTML ----

class _Forms(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._cur = None
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._cur = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "inputs": []}
            self.forms.append(self._cur)
        elif tag in ("input", "button", "select", "textarea") and self._cur is not None:
            if "name" in a and tag != "button" and "disabled" not in a:
                self._cur["inputs"].append((a["name"], a.get("type", "text").lower(), a.get("value", "")))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._cur = None

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def parse_forms(html):
    p = _Forms()
    p.feed(html)
    p.close()
    return p.forms, " ".join(p.text)


def form_fields(form):
    """The name -> value pairs a browser would submit (no submit buttons, no unchecked boxes)."""
    out = []
    for name, typ, value in form["inputs"]:
        if typ in ("submit", "image", "reset", "button", "checkbox", "radio", "file"):
            continue
        out.append((name, value))
    return out


def field(form, name):
    for n, _typ, v in form["inputs"]:
        if n == name:
            return v
    return None


# ---------------------------------------------------------------- SAML ----

def b64_xml(value, deflated=False):
    """Decode a SAMLResponse/SAMLRequest parameter to XML text (best effort)."""
    try:
        raw = base64.b64decode("".join(value.split()), validate=False)
        if deflated:
            raw = zlib.decompress(raw, -15)
        return raw.decode("utf-8", errors="replace")
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return f"(cannot decode: {e})"


def describe_redirect(url):
    """A redirect URL carrying a SAML message (HTTP-Redirect binding), taken apart."""
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    out = {
        "binding": "HTTP-Redirect",
        "url": url,
        "destination": urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
    }
    for k in ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"):
        out[k] = q[k][0] if k in q else None
    msg = out["SAMLRequest"] or out["SAMLResponse"]
    out["xml"] = b64_xml(msg, deflated=True) if msg else None
    return out


def describe_post(action, form):
    out = {"binding": "HTTP-POST", "url": action, "destination": action}
    for k in ("SAMLRequest", "SAMLResponse", "RelayState"):
        out[k] = field(form, k)
    msg = out["SAMLRequest"] or out["SAMLResponse"]
    out["xml"] = b64_xml(msg) if msg else None
    return out


def idp_base(url):
    """http://h:p, http://h:p/ and http://h:p/simplesaml all mean http://h:p/simplesaml/."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Fail(f"IDP_BASE must be an http(s) URL, got {url!r}")
    path = parts.path or "/"
    if path == "/":
        path = "/simplesaml/"
    if not path.endswith("/"):
        path += "/"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def page_error(status, text, url):
    snippet = text[:600]
    return f"unexpected page (HTTP {status}) at {url}: {snippet}"


# --------------------------------------------------------------- login ----

def login(args):
    br = Browser(args.cookie_jar)
    if args.sp_initiated:
        url = args.sp_initiated
    else:
        params = {"spentityid": args.sp_entity_id}
        if args.relay_state is not None:
            params["RelayState"] = args.relay_state
        if args.nameid_format:
            params["NameIDFormat"] = args.nameid_format
        url = idp_base(args.idp_base) + "saml2/idp/SSOService.php?" + urllib.parse.urlencode(params)

    data = None
    submitted_password = False
    for _ in range(MAX_STEPS):
        status, hdrs, text, cur = br.request(url, data)
        data = None
        if status in (301, 302, 303, 307, 308):
            loc = hdrs.get("Location")
            if not loc:
                raise Fail(f"HTTP {status} without Location at {cur}")
            url = urllib.parse.urljoin(cur, loc)
            continue
        forms, page_text = parse_forms(text)
        done = next((f for f in forms if field(f, "SAMLResponse") is not None), None)
        if done is not None:
            br.save()
            action = urllib.parse.urljoin(cur, done["action"])
            resp = field(done, "SAMLResponse")
            return {
                "acs_url": action,
                "SAMLResponse": resp,
                "RelayState": field(done, "RelayState"),
                "saml_response_xml": b64_xml(resp),
            }
        pw_form = next((f for f in forms if any(t == "password" for _n, t, _v in f["inputs"])), None)
        if pw_form is not None:
            if submitted_password:
                raise Fail(f"login refused for user {args.user!r} (wrong password?): {page_text[:300]}")
            fields = [(n, v) for n, v in form_fields(pw_form) if n not in ("username", "password")]
            fields += [("username", args.user), ("password", args.password)]
            url = urllib.parse.urljoin(cur, pw_form["action"] or cur)
            data = fields
            submitted_password = True
            continue
        # An HTTP-POST binding AuthnRequest page from the SP: submit it like a browser.
        post_req = next((f for f in forms if field(f, "SAMLRequest") is not None), None)
        if post_req is not None and status == 200:
            url = urllib.parse.urljoin(cur, post_req["action"])
            if post_req["method"] == "post":
                data = form_fields(post_req)
            else:
                url += ("&" if "?" in url else "?") + urllib.parse.urlencode(form_fields(post_req))
            continue
        raise Fail(page_error(status, page_text, cur))
    raise Fail(f"more than {MAX_STEPS} steps without reaching the SP")


# -------------------------------------------------------------- logout ----

def logout(args):
    br = Browser(args.cookie_jar)
    if args.follow:
        url = args.follow
    else:
        if not args.idp_base:
            raise Fail("logout needs IDP_BASE (IdP-initiated) or --follow URL")
        base = idp_base(args.idp_base)
        if args.init_slo:
            url = base + "saml2/idp/initSLO.php?" + urllib.parse.urlencode({"RelayState": args.return_to})
        else:
            url = base + "saml2/idp/SingleLogoutService.php?" + urllib.parse.urlencode({"ReturnTo": args.return_to})

    idp_netloc = urllib.parse.urlsplit(url).netloc
    steps = []
    for _ in range(MAX_STEPS):
        status, hdrs, text, cur = br.request(url)
        steps.append({"url": cur, "status": status})
        if status in (301, 302, 303, 307, 308):
            loc = urllib.parse.urljoin(cur, hdrs.get("Location", ""))
            lparts = urllib.parse.urlsplit(loc)
            q = urllib.parse.parse_qs(lparts.query)
            if "SAMLRequest" in q or "SAMLResponse" in q:
                br.save()
                out = describe_redirect(loc)
                out.update({"status": status, "done": False, "steps": steps})
                return out
            if lparts.netloc == idp_netloc and lparts.path.startswith("/simplesaml/"):
                url = loc  # an internal IdP hop (e.g. logout-iframe, state pages)
                continue
            # Leaving the IdP without a SAML message: the logout is over and
            # this is the ReturnTo/RelayState URL.
            br.save()
            return {"status": status, "done": True, "binding": None, "url": loc, "steps": steps}
        forms, page_text = parse_forms(text)
        post = next((f for f in forms if field(f, "SAMLRequest") is not None or field(f, "SAMLResponse") is not None), None)
        if post is not None:
            br.save()
            out = describe_post(urllib.parse.urljoin(cur, post["action"]), post)
            out.update({"status": status, "done": False, "steps": steps})
            return out
        br.save()
        if status == 200:
            # e.g. the IdP's own "you are logged out" page (no ReturnTo).
            return {"status": status, "done": True, "binding": None, "url": cur, "page_text": page_text[:600],
                    "steps": steps}
        raise Fail(page_error(status, page_text, cur))
    raise Fail(f"more than {MAX_STEPS} steps")


# ---------------------------------------------------------------- main ----

def main(argv):
    if not argv or argv[0] not in ("login", "logout"):
        print("usage: saml_client.py login|logout ...", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "login":
        p = argparse.ArgumentParser(
            prog="login",
            description="Log in at the SimpleSAMLphp test IdP and print the SAMLResponse it would POST to the SP "
                        "(JSON: acs_url, SAMLResponse, RelayState, saml_response_xml). Nothing is sent to the SP.")
        p.add_argument("idp_base", metavar="IDP_BASE", help="http://127.0.0.1:PORT/simplesaml/")
        p.add_argument("sp_entity_id", metavar="SP_ENTITY_ID")
        p.add_argument("user", metavar="USER")
        p.add_argument("password", metavar="PASSWORD")
        p.add_argument("--sp-initiated", metavar="URL",
                       help="start from this URL (the IdP SSO URL with SAMLRequest the SP redirected to, or an SP "
                            "URL that redirects there) instead of an IdP-initiated login")
        p.add_argument("--relay-state", metavar="RS", help="RelayState for an IdP-initiated login")
        p.add_argument("--nameid-format", metavar="URN",
                       help="NameIDFormat parameter of an IdP-initiated login (1.19 honours it)")
        p.add_argument("--cookie-jar", metavar="FILE",
                       help="load/save cookies here (LWP format); pass the same file to logout")
        args = p.parse_args(rest)
        fn = login
    else:
        p = argparse.ArgumentParser(
            prog="logout",
            description="IdP-initiated single logout at the SimpleSAMLphp test IdP, or deliver an SP logout message "
                        "to it (--follow). Prints where the IdP sends the browser next, as JSON; never contacts the SP.")
        p.add_argument("idp_base", metavar="IDP_BASE", nargs="?", help="http://127.0.0.1:PORT/simplesaml/")
        p.add_argument("--cookie-jar", metavar="FILE", help="the cookie jar login saved (holds the IdP session)")
        p.add_argument("--return-to", metavar="URL", default="http://127.0.0.1/logged-out",
                       help="where the IdP sends the browser when every SP is logged out")
        p.add_argument("--init-slo", action="store_true",
                       help="use saml2/idp/initSLO.php?RelayState= instead of SingleLogoutService.php?ReturnTo=")
        p.add_argument("--follow", metavar="URL",
                       help="GET this URL (an IdP SingleLogoutService URL with the SP's SAMLResponse or "
                            "SAMLRequest) with the IdP cookies and print the next hop")
        args = p.parse_args(rest)
        fn = logout
    try:
        out = fn(args)
    except Fail as e:
        print(f"{cmd}: {e}", file=sys.stderr)
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
