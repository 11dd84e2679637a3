--- Test support: start the fake Scalekit server on 127.0.0.1 (a random free
-- port), script it, and read back exactly what the SDK sent.

local core = require "scalekit.core"
local transport = require "scalekit.twitter.transport"

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
if here:sub(1, 1) ~= "/" then here = assert(os.getenv("PWD")) .. "/" .. here end
M.ROOT = here .. "/../.."
-- Every secret of the fixtures, and every token the fakes issue, holds
-- SECRET_MARK: CI fails when any output of the suite contains it.
M.SECRET_MARK = "s3kr1t"
M.CLIENT_ID, M.CLIENT_SECRET = "sandbox-client", "sandbox-secret-s3kr1t"

local Fake = {}
Fake.__index = Fake

--- Start a fake server; returns an object with `url`, `port` and helpers.
-- `opts.script` picks the server (default fake_scalekit.py); `opts.tls =
-- { cert =, key = }` serves HTTPS with that certificate.
function M.start(opts)
  opts = opts or {}
  local extra, scheme = "", "http"
  if opts.tls then
    extra = ("--tls-cert %s --tls-key %s"):format(opts.tls.cert, opts.tls.key)
    scheme = "https"
  end
  local proc = assert(io.popen(("exec python3 %s/sandbox/%s --port 0 %s"):format(
    M.ROOT, opts.script or "fake_scalekit.py", extra), "r"))
  local line = proc:read("l")
  local port = line and tonumber(line:match("^PORT (%d+)"))
  assert(port, "fake server did not start: " .. tostring(line))
  return setmetatable({ port = port, url = scheme .. "://127.0.0.1:" .. port, proc = proc,
                        http = transport.new{ ca_file = opts.tls and opts.tls.cert } }, Fake)
end

--- A new empty directory under /tmp (remove it with fake.rmdir).
function M.tempdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir
end

--- Write `text` to the file `name` in `dir`; returns its path.
function M.write(dir, name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

--- The whole contents of the file at `path` (raises when it cannot be read).
function M.read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

function M.rmdir(dir)
  os.execute("rm -rf " .. dir)
end

--- A throw-away self-signed certificate for 127.0.0.1: `{ cert =, key =, dir = }`.
function M.self_signed()
  local dir = M.tempdir()
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
    .. "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1"):format(key, cert)))
  return { cert = cert, key = key, dir = dir }
end

--- POST a control command; returns the decoded answer.
function Fake:control(name, arg)
  local resp = assert(self.http:send{
    method = name == "requests" and "GET" or "POST",
    url = self.url .. "/__sandbox/" .. name,
    headers = { ["Content-Type"] = "application/json" },
    body = arg and assert(core.json_encode(arg)) or nil,
  })
  assert(resp.status == 200, "control " .. name .. " failed: " .. tostring(resp.status))
  return assert(core.json_decode(resp.body))
end

--- Forget recorded requests and queued scripts (accounts and tokens stay).
function Fake:clear() return self:control("clear") end
--- Forget everything, as if the server had just started.
function Fake:reset() return self:control("reset") end
--- Queue a canned reply (see sandbox/fake_scalekit.py).
function Fake:script(s) return self:control("script", s) end

--- The requests recorded since the last reset, optionally only those to `path`.
function Fake:requests(path)
  local all, out = self:control("requests"), {}
  for _, r in ipairs(all) do
    if path == nil or r.path == path then out[#out + 1] = r end
  end
  return out
end

--- Value of header `name` (any case) in a recorded request, or nil.
function M.header(req, name)
  name = name:lower()
  for _, kv in ipairs(req.headers) do
    if kv[1]:lower() == name then return kv[2] end
  end
  return nil
end

--- Names of the headers of a recorded request, lower-case, sorted.
function M.header_names(req)
  local out = {}
  for i, kv in ipairs(req.headers) do out[i] = kv[1]:lower() end
  table.sort(out)
  return out
end

function Fake:stop()
  pcall(self.control, self, "shutdown")
  self.http:close()
  self.proc:close()
end

-- "array" or "object" for a table marked (or shaped) as one, nil for an
-- unmarked empty table, which JSON could write either way.
local function shape(t)
  local mt = getmetatable(t)
  if mt == core.array_mt then return "array" end
  if mt == core.object_mt then return "object" end
  if next(t) == nil then return nil end
  return t[1] ~= nil and "array" or "object"
end
M.shape = shape

--- Deep equality that also compares integer vs float and array vs object
-- (a marked `[]` differs from a marked `{}`; an unmarked empty table
-- matches either).
function M.same(a, b, path)
  path = path or "value"
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" and math.type(a) ~= math.type(b) then
    return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b)
  end
  if type(a) ~= "table" then
    if a == b then return true end
    return false, ("%s: %s vs %s"):format(path, tostring(a), tostring(b))
  end
  local sa, sb = shape(a), shape(b)
  if sa and sb and sa ~= sb then return false, ("%s: %s vs %s"):format(path, sa, sb) end
  for k, v in pairs(a) do
    local ok, why = M.same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing on the left" end
  end
  return true
end

-- A value of a string format, for samples.
local FORMAT_SAMPLE = { username = "XDevelopers", space_id = "1YqKDqWqdPLsV",
                        date_time = "2026-01-01T00:00:00Z" }

--- A valid value for a catalog parameter, derived from its constraints;
-- `id` is the value for ID formats.
function M.sample(p, id)
  local function one(format, enum, i)
    if enum then return enum[1] end
    if format == "id" then return i and tostring(1000 + i) or id end
    if format == "dm_conversation_id" then return id .. "-2244994945" end
    return FORMAT_SAMPLE[format]
  end
  if p.type == "array" then
    local t = {}
    for i = 1, p.min_items or 1 do t[i] = one(p.items_format, p.items_enum, i) or ("opt" .. i) end
    return t
  end
  if p.type == "integer" then return p.max or 42 end
  if p.type == "boolean" then return false end
  if p.enum then return p.enum[#p.enum] end
  if p.list then
    local t = {}
    for i = 1, p.min_items or 1 do t[i] = one(p.items_format, p.items_enum, i) or ("value" .. i) end
    return table.concat(t, ",")
  end
  return one(p.format) or ("value for " .. p.name)
end

--- A client pointed at the fake server with the sandbox credentials.
function M.client(fake, opts)
  local twitter = require "scalekit.twitter"
  local o = { env_url = fake.url, client_id = M.CLIENT_ID, client_secret = M.CLIENT_SECRET,
              identifier = "user_123" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return twitter.new(o)
end

--- Create the ACTIVE connected account the sandbox needs for tool calls.
function M.connect(fake, identifier)
  local tw = M.client(fake, { identifier = identifier or "user_123" })
  assert(tw:get_or_create_connected_account())
  tw:close()
end

--- A fake Scalekit (`opts` as for `start`) with the connected account of
-- `identifier` (default "user_123") already made.
function M.start_connected(opts, identifier)
  local f = M.start(opts)
  M.connect(f, identifier)
  return f
end

--- Inside a describe block: a fake server (`start_opts` as for `start`) and
-- a client `make(f)` for the whole block, closed and stopped after it, with
-- the request log cleared before each test.  `bind(f, tw)` hands both to the
-- block's locals once they exist.
function M.per_block(bind, start_opts, make)
  local busted = require "busted"       -- the spec globals live in the spec's environment
  local setup, teardown, before_each = busted.setup, busted.teardown, busted.before_each
  local f, tw
  setup(function()
    f = M.start(start_opts)
    tw = make(f)
    bind(f, tw)
  end)
  teardown(function()
    tw:close()
    f:stop()
  end)
  before_each(function() f:clear() end)
end

return M
