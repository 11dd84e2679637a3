-- gen_tools_md.lua - write docs/TOOLS.md, the tool reference, from the catalog.
--   bin/scalekit-lua scripts/gen_tools_md.lua > docs/TOOLS.md   (or: make tools-doc)
local tools = require "scalekit.twitter.tools"

local AUTH = { user = "user", app = "app-only", any = "user or app-only", none = "none" }
local out = { "# Tool reference", "",
  "Generated from `lua/scalekit/twitter/catalog.lua` by `make tools-doc`; do not edit.",
  "Call a tool as `tw:<short name>{...}` or `tw:twitter_<short name>{...}`. Parameters in bold are required;",
  "X route, auth and scopes apply to direct mode (`oauth2.authorize_url{ scopes_for = {...} }` asks for",
  "exactly the scopes of the tools you name).", "",
  "| tool | what it does | parameters | X route | auth | OAuth 2.0 scopes |", "|---|---|---|---|---|---|" }
for _, t in ipairs(tools.list) do
  local params = {}
  for _, p in ipairs(t.params) do
    local s = p.name .. " (" .. p.type .. ")"
    params[#params + 1] = p.required and ("**" .. s .. "**") or s
  end
  out[#out + 1] = ("| `%s` | %s | %s | `%s` | %s | %s |"):format(t.short, t.summary,
    #params > 0 and table.concat(params, ", ") or "—", t.http, AUTH[t.auth],
    t.scopes and #t.scopes > 0 and table.concat(t.scopes, " ") or "—")
end
io.write(table.concat(out, "\n"), "\n")
