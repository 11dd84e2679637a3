#!/usr/bin/env python3
"""fake_scalekit.py - a local stand-in for Scalekit's REST API (tests and sandbox).

Speaks the routes scalekit.twitter uses: POST /oauth/token, POST
/api/v1/execute_tool, the connected-account routes, GET /api/v1/connections/app,
the tool listings (GET /api/v1/tools, /tools/scoped, /tools/available: the 80
Twitter tools of sandbox/scalekit_tools.json, the names, parameter types and
required flags the connector page gives, plus one tool of another connector),
and /proxy/*.  GET queries take repeated keys for repeated fields
(grpc-gateway's form) and dotted names for nested ones (filter.provider).  Every
request is recorded exactly (method, path, raw query, headers in order, body)
so tests can assert what the SDK sent, and the server can be scripted to answer
with canned replies or faults (status, headers, body, delay, dropped
connection).  Standard library only; listens on 127.0.0.1 only.

Run:  python3 sandbox/fake_scalekit.py [--port 0] [--tls-cert C --tls-key K]
                                      [--account CONNECTOR:IDENTIFIER]  (an ACTIVE account, as the sandbox has)
It prints "PORT <n>" on stdout once it listens.

Control routes (not recorded), all JSON:
  GET  /__sandbox/requests         the recorded requests
  POST /__sandbox/clear            forget recorded requests and queued scripts
  POST /__sandbox/reset            forget everything: also tokens, accounts, posts
  POST /__sandbox/script           queue a reply: {"path": "/api/v1/execute_tool",
                                   "method": "POST", "times": 1, "status": 200,
                                   "headers": {...}, "json": ... | "body": "...",
                                   "delay": 0.5, "drop": false}
  POST /__sandbox/config           {"token_ttl": 3600, "auto_activate": true,
                                   "latency": 0.0 (seconds added to every tool call)}
  POST /__sandbox/revoke_tokens    make every issued token invalid (-> 401)
  POST /__sandbox/shutdown         stop the server
"""
import argparse
import base64
import json
import os
import re
import sys
import time
from urllib.parse import parse_qs

from fakebase import FakeHandler, FakeState, serve

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret-s3kr1t"
SANDBOX_USER = {"id": "1720000000000000001", "name": "Sandbox User", "username": "sandbox_user"}


class State(FakeState):
    def reset(self):
        super().reset()
        self.tokens = set()
        self.token_seq = 0
        self.token_ttl = 3600
        self.auto_activate = True
        self.accounts = {}
        self.posts = []
        self.post_seq = 1720000000000000100
        self.exec_seq = 0
        self.latency = 0.0
        self.media = {}


STATE = State()

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "scalekit_tools.json")) as f:
    TWITTER_TOOLS = json.load(f)
OTHER_TOOLS = [{"name": "slack_send_message", "provider": "SLACK",
                "params": [{"name": "channel", "type": "string", "required": True},
                           {"name": "text", "type": "string", "required": True}]}]


def listed_tool(t):
    """A Tool as ListTools answers it: id, provider and the definition Struct."""
    props = {p["name"]: {"type": p["type"]} for p in t["params"]}
    required = [p["name"] for p in t["params"] if p["required"]]
    return {"id": "tool_" + t["name"], "provider": t.get("provider", "TWITTER"),
            "definition": {"name": t["name"], "description": "Scalekit tool " + t["name"],
                           "input_schema": {"type": "object", "properties": props, "required": required}},
            "tags": [], "isDefault": True}


def paged(items, q, key, default=50):
    """One page of items with camelCase paging fields, as grpc-gateway answers."""
    size = int(q.get("page_size", q.get("pageSize", [default]))[0] or default)
    token = q.get("page_token", q.get("pageToken", ["0"]))[0] or "0"
    start = int(token) if token.isdigit() else 0
    chunk = items[start:start + size]
    nxt = str(start + size) if start + size < len(items) else ""
    return {key: chunk, "nextPageToken": nxt, "prevPageToken": "", "totalSize": len(items)}


def envelope(code, message, status, error_code=None, tool_error=None):
    """A grpc-gateway error body with an optional ErrorInfo detail."""
    body = {"code": code, "message": message, "details": []}
    if error_code:
        info = {"@type": "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo",
                "error_code": error_code}
        if tool_error:
            info["tool_error_info"] = tool_error
        body["details"].append(info)
    return status, body


class Handler(FakeHandler):
    server_version = "fake-scalekit/1"
    STATE = STATE

    def extra_control(self, path, arg):
        if path == "/__sandbox/config":
            STATE.token_ttl = arg.get("token_ttl", STATE.token_ttl)
            STATE.auto_activate = arg.get("auto_activate", STATE.auto_activate)
            STATE.latency = arg.get("latency", STATE.latency)
            return {}
        if path == "/__sandbox/revoke_tokens":
            STATE.tokens.clear()
            return {}
        return None

    # -- Scalekit -----------------------------------------------------------
    def authorized(self):
        auth = self.headers.get("Authorization", "")
        with STATE.lock:
            return auth.startswith("Bearer ") and auth[7:] in STATE.tokens

    def route(self, url, raw, rec):
        path = url.path
        if path == "/oauth/token" and self.command == "POST":
            return self.token(raw)
        if not self.authorized():
            return self.send(*envelope(16, "unauthenticated", 401))
        if path.startswith("/proxy/"):
            return self.proxy(url, raw)
        body = json.loads(raw) if raw else {}
        multi = parse_qs(url.query)
        query = {k: v[0] for k, v in multi.items()}
        if path == "/api/v1/execute_tool" and self.command == "POST":
            return self.execute(body)
        if path.startswith("/api/v1/connected_accounts"):
            return self.accounts(path, self.command, body, query, multi)
        if path.startswith("/api/v1/tools") and self.command == "GET":
            return self.tools(path, multi)
        if path == "/api/v1/connections/app" and self.command == "GET":
            conns = [{"id": "conn_1", "provider": "TWITTER", "type": "OAUTH", "status": "COMPLETED",
                      "enabled": True, "providerKey": "twitter", "keyId": "twitter",
                      "createdAt": "2026-01-01T00:00:00Z"},
                     {"id": "conn_2", "provider": "SLACK", "type": "OAUTH", "status": "COMPLETED",
                      "enabled": True, "providerKey": "slack", "keyId": "slack",
                      "createdAt": "2026-01-02T00:00:00Z"}]
            if query.get("provider"):
                conns = [c for c in conns if c["provider"] == query["provider"]]
            return self.send(200, paged(conns, multi, "connections"))
        self.send(*envelope(5, "route not found: %s %s" % (self.command, path), 404))

    def token(self, raw):
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return self.send(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self.send(401, {"error": "invalid_client",
                                   "error_description": "client authentication failed"})
        with STATE.lock:
            STATE.token_seq += 1
            tok = "tok-s3kr1t-%d" % STATE.token_seq   # the marker CI looks for in all output
            STATE.tokens.add(tok)
            ttl = STATE.token_ttl
        self.send(200, {"access_token": tok, "token_type": "Bearer",
                        "expires_in": ttl, "scope": "openid"})

    def execute(self, body):
        name = body.get("tool_name", "")
        params = body.get("params", {})
        key = (body.get("connector"), body.get("identifier"))
        with STATE.lock:
            STATE.exec_seq += 1
            exec_id = "exec_%d" % STATE.exec_seq
            acct = STATE.accounts.get(key)
        if not body.get("connected_account_id") and (acct is None or acct["status"] != "ACTIVE"):
            return self.send(*envelope(5, "connected account not found or not active", 404,
                                       "CONNECTED_ACCOUNT_NOT_FOUND"))
        if STATE.latency:
            time.sleep(STATE.latency)
        status, data = self.simulate(name, params)
        if status != 200:
            return self.send(*envelope(2, "tool execution failed", 400 if status < 500 else 500,
                                       "TOOL_ERROR",
                                       {"execution_id": exec_id, "tool_error_code": str(status),
                                        "tool_error_message": data}))
        self.send(200, {"data": data, "execution_id": exec_id})

    def simulate(self, name, p):
        """A tiny X: enough for the quickstart and examples to show real flows."""
        with STATE.lock:
            if name == "twitter_user_me":
                return 200, {"data": dict(SANDBOX_USER)}
            if name == "twitter_post_create":
                STATE.post_seq += 1
                post = {"id": str(STATE.post_seq), "text": p.get("text", ""),
                        "author_id": SANDBOX_USER["id"],
                        "edit_history_tweet_ids": [str(STATE.post_seq)]}
                if p.get("reply_in_reply_to_tweet_id"):
                    post["in_reply_to_tweet_id"] = p["reply_in_reply_to_tweet_id"]
                if p.get("media_media_ids"):
                    post["attachments"] = {"media_keys": ["3_" + m for m in p["media_media_ids"]]}
                STATE.posts.append(post)
                return 200, {"data": {"id": post["id"], "text": post["text"],
                                      "edit_history_tweet_ids": post["edit_history_tweet_ids"]}}
            if name == "twitter_recent_search":
                words = [w.lower() for w in p.get("query", "").split() if ":" not in w]
                hits = [dict(x) for x in reversed(STATE.posts)
                        if all(w in x["text"].lower() for w in words)]
                hits = hits[: int(p.get("max_results", 10))]
                meta = {"result_count": len(hits)}
                if hits:
                    meta.update(newest_id=hits[0]["id"], oldest_id=hits[-1]["id"])
                return 200, {"data": hits, "meta": meta} if hits else {"meta": meta}
            if name == "twitter_post_lookup":
                for x in STATE.posts:
                    if x["id"] == p.get("id"):
                        return 200, {"data": dict(x)}
                return 404, "Could not find tweet with id: [%s]." % p.get("id")
            if name in ("twitter_media_upload_base64", "twitter_media_upload_init"):
                STATE.post_seq += 1
                mid = str(STATE.post_seq)
                size = p.get("total_bytes") or len(base64.b64decode(p.get("media_data", "")))
                STATE.media[mid] = {"size": size, "got": 0, "video": p.get("media_type", "").startswith("video/")}
                return 200, {"data": {"id": mid, "media_key": "3_" + mid}}
            if name == "twitter_media_upload_append":
                m = STATE.media.get(p.get("media_id"))
                if m is None:
                    return 400, "BadRequest: Not found"
                m["got"] += len(base64.b64decode(p["media_data"]))
                return 200, {}
            if name == "twitter_media_upload_status_get":
                return 200, {"data": {"id": p.get("media_id"), "processing_info": {"state": "succeeded",
                                                                                   "progress_percent": 100}}}
            if name == "twitter_followers_get":
                everyone = [{"id": str(1720000000000001000 + i), "name": "Follower %d" % i,
                             "username": "follower_%d" % i} for i in range(1, 26)]
                n = int(p.get("max_results", 100))
                # X's tokens are opaque and at least 16 characters: "page" + 12 digits
                token = p.get("pagination_token") or "page000000000000"
                start = int(token[4:]) if re.match(r"^page\d{12}$", token) else 0
                chunk = everyone[start:start + n]
                meta = {"result_count": len(chunk)}
                if start + n < len(everyone):
                    meta["next_token"] = "page%012d" % (start + n)
                return 200, {"data": chunk, "meta": meta}
            if name == "twitter_post_delete":
                before = len(STATE.posts)
                STATE.posts = [x for x in STATE.posts if x["id"] != p.get("id")]
                return 200, {"data": {"deleted": len(STATE.posts) < before}}
        return 200, {"data": {"tool": name, "params": p, "sandbox": True}}

    def tools(self, path, multi):
        """The tool listings: every tool, or those an identifier's ACTIVE accounts allow."""
        first = lambda k: multi.get(k, [None])[0]
        everything = TWITTER_TOOLS + OTHER_TOOLS
        if path == "/api/v1/tools":
            tools = everything
            if first("filter.provider"):
                tools = [t for t in tools if t.get("provider", "TWITTER") == first("filter.provider")]
            if multi.get("filter.tool_name"):
                tools = [t for t in tools if t["name"] in multi["filter.tool_name"]]
            if first("filter.query"):
                tools = [t for t in tools if first("filter.query") in t["name"]]
            page = paged([listed_tool(t) for t in tools], multi, "tools")
            page["toolNames"] = [t["definition"]["name"] for t in page["tools"]]
            return self.send(200, page)
        if path in ("/api/v1/tools/scoped", "/api/v1/tools/available"):
            ident = first("identifier")
            if not ident:
                return self.send(*envelope(3, "identifier is required", 400))
            with STATE.lock:
                accts = [a for (c, i), a in sorted(STATE.accounts.items())
                         if i == ident and a["status"] == "ACTIVE"]
            connectors = {a["connector"] for a in accts}
            if multi.get("filter.connection_names"):
                connectors &= set(multi["filter.connection_names"])
            allowed = [t for t in everything if t["name"].split("_")[0] in connectors]
            if multi.get("filter.tool_names"):
                allowed = [t for t in allowed if t["name"] in multi["filter.tool_names"]]
            if path.endswith("/available"):
                return self.send(200, paged([listed_tool(t) for t in allowed], multi, "tools"))
            ids = {a["connector"]: a["id"] for a in accts}
            rows = [{"tool": listed_tool(t), "identifier": ident,
                     "connectedAccountId": ids[t["name"].split("_")[0]]} for t in allowed]
            return self.send(200, paged(rows, multi, "tools"))
        self.send(*envelope(5, "route not found", 404))

    def accounts(self, path, method, body, query, multi):
        ref = dict(query)
        ref.update({k: v for k, v in body.items() if isinstance(v, str)})
        key = (ref.get("connector"), ref.get("identifier"))
        with STATE.lock:
            acct = STATE.accounts.get(key)
            if ref.get("id"):     # by connected account id: it wins over the identifier
                acct = next((a for a in STATE.accounts.values() if a["id"] == ref["id"]), None)
            if path == "/api/v1/connected_accounts/magic_link" and method == "POST":
                return self.send(200, {"link": "https://sandbox.scalekit.local/magic/%s" % key[1],
                                       "expiry": "2030-01-01T00:00:00Z"})
            if path == "/api/v1/connected_accounts/auth" and method == "GET":
                if acct is None:
                    return self.send(*envelope(5, "connected account not found", 404,
                                               "CONNECTED_ACCOUNT_NOT_FOUND"))
                return self.send(200, {"connected_account": acct})
            if path == "/api/v1/connected_accounts/details" and method == "GET":
                if acct is None:
                    return self.send(*envelope(5, "connected account not found", 404,
                                               "CONNECTED_ACCOUNT_NOT_FOUND"))
                return self.send(200, {"connected_account": {k: v for k, v in acct.items()
                                                             if k != "authorization_details"}})
            if path == "/api/v1/connected_accounts" and method == "POST":
                if acct is not None:
                    return self.send(*envelope(6, "connected account already exists", 409))
                acct = {"id": "ca_%d" % (len(STATE.accounts) + 1), "identifier": key[1],
                        "connector": key[0], "provider": "TWITTER",
                        "status": "ACTIVE" if STATE.auto_activate else "PENDING_AUTH",
                        "authorization_type": "OAUTH",
                        "authorization_details": body.get("connected_account", {}).get(
                            "authorization_details", {})}
                if "api_config" in body.get("connected_account", {}):
                    acct["api_config"] = body["connected_account"]["api_config"]
                STATE.accounts[key] = acct
                return self.send(200, {"connected_account": acct})
            if path == "/api/v1/connected_accounts" and method == "PUT":
                if acct is None:
                    return self.send(*envelope(5, "connected account not found", 404))
                update = body.get("connected_account", {})
                for field in ("authorization_details", "api_config"):
                    if field in update:
                        acct[field] = update[field]
                return self.send(200, {"connected_account": acct})
            if path == "/api/v1/connected_accounts" and method == "GET":
                rows = [{k: v for k, v in a.items() if k != "authorization_details"}
                        for (c, i), a in sorted(STATE.accounts.items())
                        if c == ref.get("connector", c) and i == ref.get("identifier", i)
                        and c in multi.get("connection_names", [c])]
                return self.send(200, {"connected_accounts": rows, "total_size": len(rows),
                                       "next_page_token": "", "prev_page_token": ""})
            if path == "/api/v1/connected_accounts:delete" and method == "POST":
                if STATE.accounts.pop(key, None) is None:
                    return self.send(*envelope(5, "connected account not found", 404))
                return self.send(200, {})
            if path == "/api/v1/connected_accounts/user/verify" and method == "POST":
                return self.send(200, {"post_user_verify_redirect_url":
                                       "https://sandbox.scalekit.local/verified"})
        self.send(*envelope(5, "route not found", 404))

    def proxy(self, url, raw):
        m = re.match(r"^/proxy/2/media/upload/(\d+)/finalize$", url.path)
        if m and self.command == "POST":
            with STATE.lock:
                media = STATE.media.get(m.group(1))
            if media is None or media["got"] != media["size"]:
                return self.send(400, {"title": "Invalid Request", "detail": "BadRequest: size mismatch"})
            out = {"id": m.group(1), "size": media["size"]}
            if media["video"]:
                out["processing_info"] = {"state": "pending", "check_after_secs": 0}
            return self.send(200, {"data": out})
        self.send(200, {"proxied": {"method": self.command, "path": url.path[len("/proxy"):],
                                    "query": url.query, "body": raw.decode("utf-8", "replace")}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--account", action="append", default=[],
                    help="start with an ACTIVE connected account CONNECTOR:IDENTIFIER")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    args = ap.parse_args()
    for i, spec in enumerate(args.account):
        connector, _, ident = spec.partition(":")
        STATE.accounts[(connector, ident)] = {
            "id": "ca_sandbox_%d" % (i + 1), "identifier": ident, "connector": connector,
            "provider": "TWITTER", "status": "ACTIVE", "authorization_type": "OAUTH",
            "authorization_details": {"oauth_token": {"scopes": ["tweet.read", "tweet.write", "users.read"]}}}
    serve(Handler, args.port, args.tls_cert, args.tls_key)


if __name__ == "__main__":
    sys.exit(main())
