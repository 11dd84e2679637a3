#!/usr/bin/env python3
"""x_params.py - add X's parameter schemas to sandbox/x_routes.json.

Reads X's OpenAPI document (argument 1, e.g. ../shared/reference/x-api/
openapi.json) and writes, for every route already in x_routes.json, the
resolved schema of each path and query parameter under "params"
({"name": {"in": "path"|"query", "schema": {...}}}) and the OAuth 2.0 scopes
the operation needs under "scopes".  The fake X and the boundary spec read
them; nothing else changes in the file.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTES = os.path.join(HERE, "..", "sandbox", "x_routes.json")


def main(openapi_path):
    oa = json.load(open(openapi_path))

    def deref(s, seen=()):
        if isinstance(s, dict):
            if "$ref" in s:
                ref = s["$ref"]
                if ref in seen:
                    return {}
                node = oa
                for k in ref.lstrip("#/").split("/"):
                    node = node[k]
                return deref(node, seen + (ref,))
            return {k: deref(v, seen) for k, v in s.items()}
        if isinstance(s, list):
            return [deref(v, seen) for v in s]
        return s

    doc = json.load(open(ROUTES))
    for r in doc["routes"]:
        op = oa["paths"].get(r["path"], {}).get(r["method"].lower(), {})
        params = {}
        for p in op.get("parameters", []):
            p = deref(p)
            if p.get("in") in ("path", "query"):
                params[p["name"]] = {"in": p["in"], "schema": p.get("schema", {})}
        r["params"] = params
        # the OAuth 2.0 user-context scopes the operation needs
        scopes = set()
        for sec in op.get("security", []):
            scopes.update(sec.get("OAuth2UserToken", []))
        r["scopes"] = sorted(scopes)
    with open(ROUTES, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "reference", "x-api",
                                                             "openapi.json"))
