#!/usr/bin/env python3
"""fake_x.py - a local, stateful stand-in for X API v2 (tests and sandbox).

What it checks, like X does: the route exists (x_routes.json, extracted from
X's OpenAPI document), the token's kind is one the route accepts (app-only
bearer vs user context; 403 unsupported-authentication otherwise), query
parameter names are known (400 "is not one of [...]"; tweet.fields and
post.fields are both accepted), JSON bodies match the operation's schema, and
"your own id" paths use the token's user.  Every request is recorded with any
schema violations found, for the conformance spec.

What it keeps: users, posts (search and counts over them), likes, reposts,
bookmarks, follows, mutes, blocks, lists with members/followers/pins, DM
conversations, media uploads with processing states, Spaces, compliance
jobs, activity subscriptions.  Answers use X's shapes: data/includes/meta with
next_token, partial errors inside a 200, problem details, rate-limit headers.
OAuth 2.0: /i/oauth2/authorize (auto-approves, redirects with code and
state), /2/oauth2/token (authorization_code with PKCE S256, refresh_token with
rotation), /2/oauth2/revoke.  The label stream sends NDJSON with heartbeats.

Run:  python3 sandbox/fake_x.py [--port 0]      prints "PORT <n>"
Control routes (JSON): GET /__sandbox/requests, POST /__sandbox/clear,
/__sandbox/reset, /__sandbox/script (like fake_scalekit.py), /__sandbox/tokens
{"access_token", "refresh_token", "expires_in", "user_id", "kind", "scope"} (a user
token with a scope list gets 403 "not permitted" on routes needing others),
/__sandbox/oauth1 {"consumer_key", "consumer_secret", "token", "token_secret"}
(an OAuth 1.0a app and user: signed requests are verified, HMAC-SHA1),
/__sandbox/config {"rate_limit", "stream_events", "processing_polls",
"access_ttl"}, /__sandbox/state (GET), /__sandbox/shutdown.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
from urllib.parse import parse_qs, quote, unquote, urlencode

from fakebase import FakeHandler, FakeState, serve

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTES = json.load(open(os.path.join(HERE, "x_routes.json")))["routes"]
APP_TOKEN = "sandbox-app-bearer-s3kr1t"
CLIENT_ID, CLIENT_SECRET = "sandbox-x-client", "sandbox-x-secret-s3kr1t"
ME = "1720000000000000001"
SELF_ID_PATHS = {  # X requires the token's own user in {id} / {source_user_id}
    "/2/users/{id}/blocking", "/2/users/{id}/bookmarks", "/2/users/{id}/bookmarks/{tweet_id}",
    "/2/users/{id}/followed_lists", "/2/users/{id}/followed_lists/{list_id}", "/2/users/{id}/muting",
    "/2/users/{id}/likes", "/2/users/{id}/likes/{tweet_id}", "/2/users/{id}/retweets",
    "/2/users/{id}/retweets/{source_tweet_id}", "/2/users/{id}/following",
    "/2/users/{source_user_id}/following/{target_user_id}",
    "/2/users/{source_user_id}/muting/{target_user_id}", "/2/users/{id}/pinned_lists",
    "/2/users/{id}/pinned_lists/{list_id}", "/2/users/{id}/timelines/reverse_chronological",
}


def compile_route(r):
    rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", r["path"])
    return re.compile("^" + rx + "$")


for _r in ROUTES:
    _r["rx"] = compile_route(_r)


def problem(status, title, detail, ptype="about:blank", **extra):
    body = {"title": title, "detail": detail, "status": status,
            "type": ptype if ptype == "about:blank" else "https://api.x.com/2/problems/" + ptype}
    body.update(extra)
    return status, body


# RFC 3339 date-time (X's "format": "date-time"), ranges checked below.
DATE_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_date_time(v):
    m = DATE_TIME.match(v)
    if not m:
        return False
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    return 1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and sec <= 60


# -- a small JSON Schema validator (the subset X's OpenAPI document uses) ----
def validate(schema, value, path="body"):
    out = []
    if not isinstance(schema, dict):
        return out
    if "anyOf" in schema or "oneOf" in schema:
        subs = schema.get("anyOf") or schema.get("oneOf")
        if not any(not validate(s, value, path) for s in subs):
            out.append("%s: matches none of the allowed shapes" % path)
        return out
    if "allOf" in schema:
        for s in schema["allOf"]:
            out += validate(s, value, path)
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        if not (isinstance(value, int) and not isinstance(value, bool)):
            return out + ["%s: expected integer" % path]
    elif t == "number":
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return out + ["%s: expected number" % path]
    elif t in types and not isinstance(value, types[t]):
        return out + ["%s: expected %s" % (path, t)]
    if "enum" in schema and value not in schema["enum"]:
        out.append("%s: %r not one of %s" % (path, value, schema["enum"]))
    if isinstance(value, str):
        if schema.get("format") == "date-time" and not is_date_time(value):
            out.append("%s: %r is not an RFC 3339 date-time" % (path, value))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
        if len(value) < schema.get("minLength", 0):
            out.append("%s: shorter than %d" % (path, schema["minLength"]))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append("%s: longer than %d" % (path, schema["maxLength"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append("%s: below %s" % (path, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            out.append("%s: above %s" % (path, schema["maximum"]))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append("%s: fewer than %d items" % (path, schema["minItems"]))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append("%s: more than %d items" % (path, schema["maxItems"]))
        for i, v in enumerate(value):
            out += validate(schema.get("items", {}), v, "%s[%d]" % (path, i))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                out.append("%s: missing required %s" % (path, k))
        for k, v in value.items():
            if k in props:
                out += validate(props[k], v, "%s.%s" % (path, k))
            elif schema.get("additionalProperties") is False:
                out.append("%s: unknown property %s" % (path, k))
    return out


class State(FakeState):
    def reset(self):
        super().reset()
        self.tokens = {APP_TOKEN: {"kind": "app"}}
        self.refresh = {}
        self.codes = {}
        self.seq = 1720000000000000100
        self.rate_limit = 900
        self.rate_used = {}
        self.stream_events = 3
        self.processing_polls = 1
        self.access_ttl = 7200
        self.users = {
            ME: {"id": ME, "name": "Sandbox User", "username": "sandbox_user"},
            "2244994945": {"id": "2244994945", "name": "X Developers", "username": "XDevelopers"},
            "783214": {"id": "783214", "name": "X", "username": "X"},
        }
        self.posts = {}
        self.rel = {k: {} for k in ("likes", "retweets", "bookmarks", "following", "muting", "blocking",
                                    "followed_lists", "pinned_lists", "members", "hidden")}
        self.lists = {}
        self.dm_events = []
        self.media = {}
        self.spaces = {"1YqKDqWqdPLsV": {"id": "1YqKDqWqdPLsV", "state": "live", "title": "Lua hour",
                                         "creator_id": "2244994945"}}
        self.jobs = {}
        self.subscriptions = []
        self.oauth1 = {}          # consumer key -> {consumer_secret, tokens: {token: {secret, user_id}}}
        self.nonces = set()

    def next_id(self):
        self.seq += 1
        return str(self.seq)


STATE = State()


def oauth1_check(method, url, headers, raw):
    """Verify an OAuth 1.0a (HMAC-SHA1) Authorization header as X does: the
    consumer and token known, the timestamp within 5 minutes, the nonce
    new, and the signature over method, base URL, query and form parameters.
    Returns (token record, None) or (None, why)."""
    header = headers.get("Authorization", "")
    params = dict((k, unquote(v)) for k, v in re.findall(r'([A-Za-z_]+)="([^"]*)"', header[6:]))
    app = STATE.oauth1.get(params.get("oauth_consumer_key"))
    if app is None:
        return None, "unknown consumer key"
    tok = app["tokens"].get(params.get("oauth_token"))
    if tok is None:
        return None, "unknown token"
    if params.get("oauth_signature_method") != "HMAC-SHA1" or params.get("oauth_version", "1.0") != "1.0":
        return None, "signature method or version"
    if abs(time.time() - int(params.get("oauth_timestamp", "0"))) > 300:
        return None, "timestamp out of range"
    nonce = (params.get("oauth_consumer_key"), params.get("oauth_nonce"), params.get("oauth_timestamp"))
    if nonce in STATE.nonces:
        return None, "nonce used before"
    enc = lambda s: quote(s, safe="-._~")
    pairs = [(k, v) for k, v in params.items() if k not in ("oauth_signature", "realm")]
    pairs += [(k, v) for k, v in parse_qsl_keep(url.query)]
    if (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
        pairs += parse_qsl_keep(raw.decode("utf-8", "replace"))
    norm = "&".join("%s=%s" % kv for kv in sorted((enc(k), enc(v)) for k, v in pairs))
    base_url = "http://%s%s" % (headers.get("Host", "").lower(), url.path)
    base = "&".join([method.upper(), enc(base_url), enc(norm)])
    key = "%s&%s" % (enc(app["consumer_secret"]), enc(tok["secret"]))
    want = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(want, params.get("oauth_signature", "")):
        return None, "bad signature"
    STATE.nonces.add(nonce)
    return {"kind": "oauth1", "user_id": tok["user_id"]}, None


def parse_qsl_keep(q):
    """Query or form pairs, blank values kept, in order."""
    out = []
    for part in q.split("&") if q else []:
        k, _, v = part.partition("=")
        out.append((unquote(k.replace("+", " ")), unquote(v.replace("+", " "))))
    return out


def page(items, q, default=100, token_name="pagination_token"):
    """Slice `items` the way X pages: max_results, opaque tokens, meta."""
    n = int(q.get("max_results", default))
    token = q.get(token_name) or q.get("pagination_token") or q.get("next_token") or "0"
    if not token.isdigit():
        return problem(400, "Invalid Request", "The `%s` query parameter value [%s] is not valid"
                       % (token_name, token), "invalid-request")
    start = int(token)
    chunk = items[start:start + n]
    meta = {"result_count": len(chunk)}
    if start + n < len(items):
        meta["next_token"] = str(start + n)
    if start > 0:
        meta["previous_token"] = str(max(0, start - n))
    body = {"meta": meta}
    if chunk:
        body["data"] = chunk
    return 200, body


class Handler(FakeHandler):
    server_version = "fake-x/1"
    STATE = STATE

    def extra_control(self, path, arg):
        if path == "/__sandbox/validate":
            # {"schema": ..., "values": [...]} -> {"valid": [true|false, ...]}
            return {"valid": [not validate(arg["schema"], v) for v in arg["values"]]}
        if path == "/__sandbox/state":
            return {"tokens": STATE.tokens, "refresh": STATE.refresh, "posts": STATE.posts,
                    "media": STATE.media}
        if path == "/__sandbox/tokens":
            kind = arg.get("kind", "user")
            if arg.get("access_token"):
                STATE.tokens[arg["access_token"]] = {
                    "kind": kind, "user_id": arg.get("user_id", ME), "scope": arg.get("scope"),
                    "expires_at": time.time() + arg.get("expires_in", 7200)}
            if arg.get("refresh_token"):
                STATE.refresh[arg["refresh_token"]] = {"user_id": arg.get("user_id", ME),
                                                       "client_id": arg.get("client_id", CLIENT_ID)}
            return {}
        if path == "/__sandbox/oauth1":
            # {"consumer_key", "consumer_secret", "token", "token_secret", "user_id"}
            app = STATE.oauth1.setdefault(arg["consumer_key"], {"consumer_secret": arg["consumer_secret"],
                                                                "tokens": {}})
            app["tokens"][arg["token"]] = {"secret": arg["token_secret"], "user_id": arg.get("user_id", ME)}
            return {}
        if path == "/__sandbox/config":
            for k in ("rate_limit", "stream_events", "processing_polls", "access_ttl"):
                if k in arg:
                    setattr(STATE, k, arg[k])
            return {}
        return None

    # -- OAuth 2.0 ----------------------------------------------------------
    def client_auth(self, form):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            from urllib.parse import unquote
            cid, secret = unquote(cid), unquote(secret)
            return cid if (cid, secret) == (CLIENT_ID, CLIENT_SECRET) else None
        return form.get("client_id") if form.get("client_id") in (CLIENT_ID, "sandbox-public-client") else None

    def issue(self, user_id, client_id, scope):
        access, refresh = "ua-s3kr1t-" + os.urandom(12).hex(), "ur-s3kr1t-" + os.urandom(12).hex()  # CI marker
        # the scopes granted (checked on every call) when the grant named some
        STATE.tokens[access] = {"kind": "user", "user_id": user_id, "scope": scope or None,
                                "expires_at": time.time() + STATE.access_ttl}
        STATE.refresh[refresh] = {"user_id": user_id, "client_id": client_id, "scope": scope}
        return {"token_type": "bearer", "expires_in": STATE.access_ttl, "access_token": access,
                "scope": scope, "refresh_token": refresh}

    def oauth(self, url, raw):
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/i/oauth2/authorize":
            if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
                return self.send(400, {"error": "invalid_request"})
            code = "code-" + os.urandom(8).hex()
            with STATE.lock:
                STATE.codes[code] = {"client_id": q.get("client_id"), "redirect_uri": q.get("redirect_uri"),
                                     "challenge": q.get("code_challenge"), "scope": q.get("scope", ""),
                                     "expires": time.time() + 30}
            loc = q["redirect_uri"] + "?" + urlencode({"state": q.get("state", ""), "code": code})
            return self.send(302, body="", headers={"Location": loc})
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with STATE.lock:
            client = self.client_auth(form)
            if client is None:
                return self.send(401, {"error": "unauthorized_client",
                                       "error_description": "Missing valid authorization header"})
            if url.path == "/2/oauth2/revoke":
                tok = form.get("token", "")
                STATE.tokens.pop(tok, None)
                STATE.refresh.pop(tok, None)
                return self.send(200, {"revoked": True})
            grant = form.get("grant_type")
            if grant == "authorization_code":
                c = STATE.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "").encode()
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                if (c is None or c["expires"] < time.time() or c["client_id"] != client
                        or c["redirect_uri"] != form.get("redirect_uri") or c["challenge"] != challenge):
                    return self.send(400, {"error": "invalid_request",
                                           "error_description": "Value passed for the authorization code was invalid."})
                return self.send(200, self.issue(ME, client, c["scope"]))
            if grant == "refresh_token":
                r = STATE.refresh.pop(form.get("refresh_token", ""), None)
                if r is None or r["client_id"] != client:
                    return self.send(400, {"error": "invalid_request",
                                           "error_description": "Value passed for the token was invalid."})
                return self.send(200, self.issue(r["user_id"], client, r.get("scope", "")))
            return self.send(400, {"error": "unsupported_grant_type"})

    # -- X API v2 -------------------------------------------------------------
    def route(self, url, raw, rec):
        if url.path in ("/i/oauth2/authorize", "/2/oauth2/token", "/2/oauth2/revoke"):
            return self.oauth(url, raw)
        route, args = None, None
        for r in ROUTES:
            m = r["rx"].match(url.path)
            if m and r["method"] == self.command:
                route, args = r, m.groupdict()
                break
        if route is None:
            return self.send(*problem(404, "Not Found Error", "no route %s %s" % (self.command, url.path)))
        # authentication
        tok = None
        auth = self.headers.get("Authorization", "")
        if route["auth"]:
            with STATE.lock:
                tok = STATE.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
                if tok and tok.get("expires_at", 1e18) < time.time():
                    tok = None
                if auth.startswith("OAuth "):
                    tok, why = oauth1_check(self.command, url, self.headers, raw)
                    if why:
                        rec["violations"].append("OAuth 1.0a: " + why)
            if tok is None:
                return self.send(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                       "detail": "Unauthorized"}, ctype="application/problem+json")
            if tok["kind"] not in route["auth"]:
                names = {"app": "OAuth 2.0 Application-Only", "user": "OAuth 2.0 User Context",
                         "oauth1": "OAuth 1.0a User Context"}
                return self.send(*problem(
                    403, "Unsupported Authentication",
                    "Authenticating with %s is forbidden for this endpoint.  Supported authentication types are [%s]."
                    % (names[tok["kind"]], ", ".join(names[a] for a in route["auth"])),
                    "unsupported-authentication"))
            # a user token whose scopes are known must hold the route's
            missing = (set(route.get("scopes", [])) - set(tok["scope"].split())
                       if tok["kind"] == "user" and tok.get("scope") is not None else set())
            if missing:
                rec["violations"].append("token lacks scopes " + " ".join(sorted(missing)))
                return self.send(403, {"title": "Forbidden", "type": "about:blank", "status": 403,
                                       "detail": "You are not permitted to perform this action."},
                                 ctype="application/problem+json")
        # query parameter names and required ones
        q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        allowed = set(route["query"])
        if "post.fields" in allowed:
            allowed.add("tweet.fields")
        for k in q:
            if k not in allowed:
                rec["violations"].append("unknown query parameter " + k)
                return self.send(*problem(
                    400, "Invalid Request", "One or more parameters to your request was invalid.",
                    "invalid-request", errors=[{"parameters": {k: [q[k]]},
                                                "message": "The query parameter [%s] is not one of [%s]"
                                                % (k, ",".join(sorted(allowed)))}]))
        for k in route["required_query"]:
            if k not in q:
                rec["violations"].append("missing query parameter " + k)
                return self.send(*problem(400, "Invalid Request", "The %s query parameter is missing" % k,
                                          "invalid-request"))
        # body against the operation's schema
        body = None
        if route["body"]:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            schema = route["body"].get(ctype)
            if schema is None:
                rec["violations"].append("content type %r not accepted" % ctype)
                return self.send(*problem(400, "Invalid Request",
                                          "Requests with bodies must have content-type of application/json.",
                                          "invalid-request"))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                rec["violations"].append("body is not JSON")
                return self.send(*problem(400, "Invalid Request", "Request body is not valid JSON.", "invalid-request"))
            problems = validate(schema, body)
            if problems:
                rec["violations"] += problems
                return self.send(*problem(400, "Invalid Request", "; ".join(problems), "invalid-request"))
        elif raw:
            rec["violations"].append("unexpected request body")
        if route["path"] in SELF_ID_PATHS and tok and tok["kind"] == "user":
            own = args.get("id") or args.get("source_user_id")
            if own != tok.get("user_id"):
                return self.send(*problem(403, "Forbidden",
                                          "You are not permitted to perform this action on behalf of another user.",
                                          "not-authorized-for-resource"))
        # rate limit per route and token
        key = (route["method"], route["path"], auth)
        with STATE.lock:
            used = STATE.rate_used.get(key, 0) + 1
            STATE.rate_used[key] = used
            limit = STATE.rate_limit
        reset = int(time.time()) + 900
        rl = {"x-rate-limit-limit": limit, "x-rate-limit-remaining": max(0, limit - used),
              "x-rate-limit-reset": reset}
        if used > limit:
            return self.send(*problem(429, "Too Many Requests", "Too Many Requests", "about:blank"), headers=rl)
        user = tok.get("user_id") if tok else None
        if route["path"] == "/2/tweets/label/stream":
            return self.stream(rl)
        with STATE.lock:
            status, out = self.answer(route["method"], route["path"], args, q, body, user)
        self.send(status, out, headers=rl)

    def stream(self, rl):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for k, v in rl.items():
            self.send_header(k, str(v))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        for i in range(STATE.stream_events):
            chunk(b"\r\n")  # keep-alive heartbeat
            ev = {"data": {"public_tweet_notice": {"tweet": {"id": str(1720000000000000900 + i), "author_id": ME},
                                                   "event_type": "misleading", "application": "apply",
                                                   "event_at": "2026-11-29T00:00:00.000Z"}}}
            line = json.dumps(ev).encode() + b"\r\n"
            chunk(line[:10])     # split one message across two chunks
            chunk(line[10:])
        chunk(b"")
        self.close_connection = True

    # -- the stateful part ----------------------------------------------------
    def answer(self, method, path, a, q, body, me):
        S = STATE
        users = lambda ids: [S.users.get(i, {"id": i, "name": "User " + i, "username": "user" + i[-4:]}) for i in ids]
        posts = lambda ids: [S.posts[i] for i in ids if i in S.posts]
        rel = lambda name, owner: S.rel[name].setdefault(owner, [])

        def lookup(kind, ids, table):
            found = [table[i] for i in ids if i in table]
            out = {"data": found} if found else {}
            missing = [i for i in ids if i not in table]
            if missing:
                out["errors"] = [{"value": i, "detail": "Could not find %s with ids: [%s]." % (kind, i),
                                  "title": "Not Found Error", "resource_type": kind, "parameter": "ids",
                                  "resource_id": i, "type": "https://api.twitter.com/2/problems/resource-not-found"}
                                 for i in missing]
            return 200, out

        def one(kind, i, table, param="id"):
            if i in table:
                return 200, {"data": table[i]}
            return 200, {"errors": [{"value": i, "detail": "Could not find %s with %s: [%s]." % (kind, param, i),
                                     "title": "Not Found Error", "resource_type": kind, "parameter": param,
                                     "resource_id": i, "type": "https://api.twitter.com/2/problems/resource-not-found"}]}

        def toggle(name, owner, target, on, key):
            lst = rel(name, owner)
            if on and target not in lst:
                lst.insert(0, target)
            if not on and target in lst:
                lst.remove(target)
            return 200, {"data": {key: on}}

        def search(query):
            words = [w.lower() for w in query.split() if ":" not in w and not w.startswith("-")]
            return [p for p in sorted(S.posts.values(), key=lambda p: p["id"], reverse=True)
                    if all(w in p["text"].lower() for w in words)]

        if (method, path) == ("GET", "/2/users/me"):
            return 200, {"data": S.users[me]}
        if (method, path) == ("GET", "/2/users/{id}"):
            return one("user", a["id"], S.users)
        if (method, path) == ("GET", "/2/users"):
            return lookup("user", q["ids"].split(","), S.users)
        if (method, path) == ("GET", "/2/users/by/username/{username}"):
            byname = {u["username"].lower(): u for u in S.users.values()}
            return one("user", a["username"].lower(), byname, "username")
        if (method, path) == ("GET", "/2/users/by"):
            byname = {u["username"].lower(): u for u in S.users.values()}
            return lookup("user", [x.lower() for x in q["usernames"].split(",")], byname)
        if (method, path) == ("POST", "/2/tweets"):
            i = S.next_id()
            p = {"id": i, "text": body.get("text", ""), "author_id": me, "edit_history_tweet_ids": [i]}
            if "reply" in body:
                p["in_reply_to_tweet_id"] = body["reply"]["in_reply_to_tweet_id"]
            S.posts[i] = p
            return 201, {"data": {"id": i, "text": p["text"], "edit_history_tweet_ids": [i]}}
        if (method, path) == ("GET", "/2/tweets/{id}"):
            return one("tweet", a["id"], S.posts)
        if (method, path) == ("GET", "/2/tweets"):
            return lookup("tweet", q["ids"].split(","), S.posts)
        if (method, path) == ("DELETE", "/2/tweets/{id}"):
            return 200, {"data": {"deleted": S.posts.pop(a["id"], None) is not None}}
        if path in ("/2/tweets/search/recent", "/2/tweets/search/all"):
            status, out = page(search(q["query"]), q, 10, "next_token")
            if out.get("data"):
                out["meta"].update(newest_id=out["data"][0]["id"], oldest_id=out["data"][-1]["id"])
                ids = sorted({p["author_id"] for p in out["data"]})
                out["includes"] = {"users": users(ids)}
            return status, out
        if path in ("/2/tweets/counts/recent", "/2/tweets/counts/all"):
            n = len(search(q["query"]))
            return 200, {"data": [{"start": "2026-11-29T00:00:00.000Z", "end": "2026-11-29T01:00:00.000Z",
                                   "tweet_count": n}], "meta": {"total_tweet_count": n}}
        if path == "/2/users/{id}/likes":
            return toggle("likes", a["id"], body["tweet_id"], True, "liked")
        if path == "/2/users/{id}/likes/{tweet_id}":
            return toggle("likes", a["id"], a["tweet_id"], False, "liked")
        if path == "/2/users/{id}/liked_tweets":
            return page(posts(rel("likes", a["id"])), q)
        if path == "/2/tweets/{id}/liking_users":
            return page(users([u for u, l in S.rel["likes"].items() if a["id"] in l]), q)
        if path == "/2/users/{id}/retweets":
            return toggle("retweets", a["id"], body["tweet_id"], True, "retweeted")
        if path == "/2/users/{id}/retweets/{source_tweet_id}":
            return toggle("retweets", a["id"], a["source_tweet_id"], False, "retweeted")
        if path == "/2/tweets/{id}/retweeted_by":
            return page(users([u for u, l in S.rel["retweets"].items() if a["id"] in l]), q)
        if path == "/2/tweets/{id}/retweets":
            return page([{"id": S.next_id(), "text": "RT", "author_id": u}
                         for u, l in S.rel["retweets"].items() if a["id"] in l], q)
        if path == "/2/tweets/{id}/quote_tweets":
            return page([p for p in S.posts.values() if p.get("quote_tweet_id") == a["id"]], q, 10)
        if path == "/2/users/{id}/bookmarks" and method == "POST":
            return toggle("bookmarks", a["id"], body["tweet_id"], True, "bookmarked")
        if path == "/2/users/{id}/bookmarks/{tweet_id}":
            return toggle("bookmarks", a["id"], a["tweet_id"], False, "bookmarked")
        if path == "/2/users/{id}/bookmarks":
            return page(posts(rel("bookmarks", a["id"])), q)
        if path == "/2/users/{id}/following" and method == "POST":
            return toggle("following", a["id"], body["target_user_id"], True, "following")
        if path == "/2/users/{source_user_id}/following/{target_user_id}":
            return toggle("following", a["source_user_id"], a["target_user_id"], False, "following")
        if path == "/2/users/{id}/following":
            return page(users(rel("following", a["id"])), q)
        if path == "/2/users/{id}/followers":
            return page(users([u for u, l in S.rel["following"].items() if a["id"] in l]), q)
        if path == "/2/users/{id}/muting" and method == "POST":
            return toggle("muting", a["id"], body["target_user_id"], True, "muting")
        if path == "/2/users/{source_user_id}/muting/{target_user_id}":
            return toggle("muting", a["source_user_id"], a["target_user_id"], False, "muting")
        if path == "/2/users/{id}/muting":
            return page(users(rel("muting", a["id"])), q)
        if path == "/2/users/{id}/blocking":
            return page(users(rel("blocking", a["id"])), q)
        if path == "/2/users/{id}/timelines/reverse_chronological":
            followed = set(rel("following", a["id"])) | {a["id"]}
            return page([p for p in sorted(S.posts.values(), key=lambda p: p["id"], reverse=True)
                         if p["author_id"] in followed], q)
        # lists
        if (method, path) == ("POST", "/2/lists"):
            i = S.next_id()
            S.lists[i] = {"id": i, "name": body["name"], "owner_id": me,
                          "private": body.get("private", False), "description": body.get("description", "")}
            return 200, {"data": {"id": i, "name": body["name"]}}
        if (method, path) == ("GET", "/2/lists/{id}"):
            return one("list", a["id"], S.lists)
        if (method, path) == ("PUT", "/2/lists/{id}"):
            if a["id"] in S.lists:
                S.lists[a["id"]].update(body)
            return 200, {"data": {"updated": a["id"] in S.lists}}
        if (method, path) == ("DELETE", "/2/lists/{id}"):
            return 200, {"data": {"deleted": S.lists.pop(a["id"], None) is not None}}
        if (method, path) == ("POST", "/2/lists/{id}/members"):
            return toggle("members", a["id"], body["user_id"], True, "is_member")
        if path == "/2/lists/{id}/members/{user_id}":
            return toggle("members", a["id"], a["user_id"], False, "is_member")
        if path == "/2/lists/{id}/members":
            return page(users(rel("members", a["id"])), q)
        if path == "/2/lists/{id}/followers":
            return page(users([u for u, l in S.rel["followed_lists"].items() if a["id"] in l]), q)
        if path == "/2/lists/{id}/tweets":
            members = set(rel("members", a["id"]))
            return page([p for p in S.posts.values() if p["author_id"] in members], q)
        if path == "/2/users/{id}/followed_lists" and method == "POST":
            return toggle("followed_lists", a["id"], body["list_id"], True, "following")
        if path == "/2/users/{id}/followed_lists/{list_id}":
            return toggle("followed_lists", a["id"], a["list_id"], False, "following")
        if path == "/2/users/{id}/followed_lists":
            return page([S.lists[i] for i in rel("followed_lists", a["id"]) if i in S.lists], q)
        if path == "/2/users/{id}/pinned_lists" and method == "POST":
            return toggle("pinned_lists", a["id"], body["list_id"], True, "pinned")
        if path == "/2/users/{id}/pinned_lists/{list_id}":
            return toggle("pinned_lists", a["id"], a["list_id"], False, "pinned")
        if path == "/2/users/{id}/pinned_lists":
            return page([S.lists[i] for i in rel("pinned_lists", a["id"]) if i in S.lists], q)
        if path == "/2/users/{id}/owned_lists":
            return page([l for l in S.lists.values() if l["owner_id"] == a["id"]], q)
        if path == "/2/users/{id}/list_memberships":
            return page([S.lists[i] for i, m in S.rel["members"].items() if a["id"] in m and i in S.lists], q)
        # direct messages
        if method == "POST" and path.startswith("/2/dm_conversations"):
            if path == "/2/dm_conversations":
                conv, text = "g" + S.next_id(), body["message"].get("text", "")
            elif "participant_id" in a:
                conv, text = "-".join(sorted([me, a["participant_id"]])), body.get("text", "")
            else:
                conv, text = a["dm_conversation_id"], body.get("text", "")
            ev = {"id": S.next_id(), "event_type": "MessageCreate", "text": text, "sender_id": me,
                  "dm_conversation_id": conv}
            S.dm_events.insert(0, ev)
            return 201, {"data": {"dm_conversation_id": conv, "dm_event_id": ev["id"]}}
        if path == "/2/dm_events":
            return page(S.dm_events, q)
        if path == "/2/dm_events/{event_id}" and method == "GET":
            return one("dm_event", a["event_id"], {e["id"]: e for e in S.dm_events})
        if path == "/2/dm_events/{event_id}":
            before = len(S.dm_events)
            S.dm_events = [e for e in S.dm_events if e["id"] != a["event_id"]]
            return 200, {"data": {"deleted": len(S.dm_events) < before}}
        if path == "/2/dm_conversations/with/{participant_id}/dm_events":
            conv = "-".join(sorted([me, a["participant_id"]]))
            return page([e for e in S.dm_events if e["dm_conversation_id"] == conv], q)
        if path == "/2/dm_conversations/{id}/dm_events":
            return page([e for e in S.dm_events if e["dm_conversation_id"] == a["id"]], q)
        # media
        if (method, path) == ("POST", "/2/media/upload"):
            i = S.next_id()
            S.media[i] = {"id": i, "media_key": "3_" + i, "size": len(base64.b64decode(body["media"])),
                          "expires_after_secs": 86400}
            return 200, {"data": S.media[i]}
        if (method, path) == ("POST", "/2/media/upload/initialize"):
            i = S.next_id()
            video = body["media_type"].startswith("video/") or body["media_type"] == "image/gif"
            S.media[i] = {"id": i, "media_key": ("7_" if video else "3_") + i, "total": body["total_bytes"],
                          "chunks": {}, "video": video, "polls": 0, "finalized": False}
            return 200, {"data": {"id": i, "media_key": S.media[i]["media_key"], "expires_after_secs": 1295999}}
        if path == "/2/media/upload/{id}/append":
            m = S.media.get(a["id"])
            if m is None:
                return problem(400, "Invalid Request", "BadRequest: Not found", "invalid-request")
            m["chunks"][body["segment_index"]] = len(base64.b64decode(body["media"]))
            return 200, {"data": {"expires_at": int(time.time()) + 86400}}
        if path == "/2/media/upload/{id}/finalize":
            m = S.media.get(a["id"])
            if m is None or sum(m["chunks"].values()) != m["total"]:
                return problem(400, "Invalid Request", "BadRequest: file size mismatch", "invalid-request")
            m["finalized"] = True
            out = {"id": a["id"], "media_key": m["media_key"], "size": m["total"], "expires_after_secs": 86400}
            if m["video"]:
                out["processing_info"] = {"state": "pending", "check_after_secs": 0}
            return 200, {"data": out}
        if (method, path) == ("GET", "/2/media/upload"):
            m = S.media.get(q["media_id"])
            if m is None:
                return problem(400, "Invalid Request", "BadRequest: Not found", "invalid-request")
            m["polls"] = m.get("polls", 0) + 1
            info = {"state": "succeeded", "progress_percent": 100}
            if m.get("video") and m["polls"] <= S.processing_polls:
                info = {"state": "in_progress", "check_after_secs": 0, "progress_percent": 50}
            return 200, {"data": {"id": m["id"], "media_key": m["media_key"], "processing_info": info}}
        # spaces
        if path == "/2/spaces/{id}":
            return one("space", a["id"], S.spaces)
        if path == "/2/spaces":
            return lookup("space", q["ids"].split(","), S.spaces)
        if path == "/2/spaces/by/creator_ids":
            ids = q["user_ids"].split(",")
            found = [s for s in S.spaces.values() if s["creator_id"] in ids]
            return 200, {"data": found, "meta": {"result_count": len(found)}} if found else {"meta": {"result_count": 0}}
        if path == "/2/spaces/search":
            found = [s for s in S.spaces.values() if q["query"].lower() in s["title"].lower()
                     and q.get("state", "all") in ("all", s["state"])]
            return 200, {"data": found, "meta": {"result_count": len(found)}} if found else {"meta": {"result_count": 0}}
        if path == "/2/spaces/{id}/tweets":
            return page([], q)
        if path == "/2/spaces/{id}/buyers":
            return page(users(["2244994945"]), q)
        # compliance, usage, analytics, misc
        if (method, path) == ("POST", "/2/compliance/jobs"):
            i = S.next_id()
            S.jobs[i] = {"id": i, "type": body["type"], "status": "created", "resumable": body.get("resumable", False),
                         "upload_url": "https://storage.example/upload/" + i,
                         "download_url": "https://storage.example/download/" + i}
            return 200, {"data": S.jobs[i]}
        if path == "/2/compliance/jobs/{id}":
            return one("compliance_job", a["id"], S.jobs)
        if path == "/2/compliance/jobs":
            found = [j for j in S.jobs.values() if j["type"] == q["type"] and q.get("status", j["status"]) == j["status"]]
            return 200, {"data": found, "meta": {"result_count": len(found)}} if found else {"meta": {"result_count": 0}}
        if path == "/2/usage/tweets":
            days = int(q.get("days", 7))
            return 200, {"data": {"cap_reset_day": 1, "project_cap": "3000000", "project_usage": "1234",
                                  "daily_project_usage": {"project_id": "1", "usage": [
                                      {"date": "2026-11-%02dT00:00:00.000Z" % (29 - d), "usage": "10"}
                                      for d in range(days)]}}}
        if path == "/2/tweets/analytics":
            return 200, {"data": [{"id": i, "timestamped_metrics": [{"timestamp": q["start_time"],
                                                                     "metrics": {"impressions": 100, "likes": 3}}]}
                                  for i in q["ids"].split(",")]}
        if path == "/2/tweets/{tweet_id}/hidden":
            S.rel["hidden"][a["tweet_id"]] = body["hidden"]
            return 200, {"data": {"hidden": body["hidden"]}}
        if path == "/2/activity/subscriptions":
            sub = {"subscription_id": S.next_id(), "event_type": body["event_type"], "filter": body["filter"],
                   "created_at": "2026-11-29T00:00:00.000Z"}
            S.subscriptions.append(sub)
            return 200, {"data": {"subscription": sub}}
        if path == "/2/openapi.json":
            return 200, {"openapi": "3.0.0", "info": {"title": "X API v2 (sandbox)", "version": "2.167"}}
        return problem(404, "Not Found Error", "the sandbox does not implement %s %s" % (method, path))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user-token", action="append", default=[], metavar="ACCESS:REFRESH",
                    help="start with a user access token (and its refresh token) for ME")
    args = ap.parse_args()
    for pair in args.user_token:
        access, _, refresh = pair.partition(":")
        STATE.tokens[access] = {"kind": "user", "user_id": ME, "expires_at": time.time() + 7200}
        if refresh:
            STATE.refresh[refresh] = {"user_id": ME, "client_id": CLIENT_ID}
    serve(Handler, args.port)


if __name__ == "__main__":
    sys.exit(main())
