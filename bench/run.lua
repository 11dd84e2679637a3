-- bench/run.lua - benchmarks, each a ratio against a reference measured in
-- the same run (absolute times on these machines are noisy).
--   bin/scalekit-lua bench/run.lua [N]        (make bench; make bench BENCH_N=50 for a smoke run)
-- Servers: nginx on 127.0.0.1 (the fast server) and the Python fakes (for
-- latency and uploads).  Nothing leaves the machine.

local core = require "scalekit.core"
local twitter = require "scalekit.twitter"
local transport = require "scalekit.twitter.transport"
local scalekit = require "scalekit.twitter.scalekit"

local N = tonumber(arg[1]) or 5000
-- BENCH_PROFILE=dir keeps each callgrind output there (callgrind.NN, in the
-- order the lines run: N calls, then none) to read with callgrind_annotate;
-- BENCH_IR_ONLY=1 stops after the instruction lines; BENCH_STEPS=1 adds
-- where one tool call's instructions go, a piece at a time.
local PROFILE_DIR = os.getenv("BENCH_PROFILE")
local profile_seq = 0
local ROOT = (arg[0]:match("^(.*)/bench/run%.lua$") or ".")
local HOST = ROOT .. "/bin/scalekit-lua"
local results = {}
local splits = {}        -- { what, { object -> instructions per call } }, from callgrind

-- "obj 12.3k, ..." for the objects that take at least 500 instructions.
local function where(by)
  local objs = {}
  for obj, n in pairs(by) do if n >= 500 then objs[#objs + 1] = obj end end
  table.sort(objs, function(a, b) return by[a] > by[b] end)
  local parts = {}
  for i, obj in ipairs(objs) do parts[i] = ("%s %.1fk"):format(obj, by[obj] / 1000) end
  return table.concat(parts, ", ")
end

-- `spread` (optional) is the lowest and highest ratio over the rounds.
local function report(name, value, unit, ratio, target, spread)
  results[#results + 1] = { name, value, unit, ratio, target, spread }
  io.stderr:write(("%-46s %12.1f %-8s %s%s\n"):format(name, value, unit,
    ratio and ("ratio %.2f (target %s)"):format(ratio, target) or "",
    spread and (" range %.2f-%.2f"):format(spread[1], spread[2]) or ""))
end

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  return s[(#s + 1) // 2]
end

-- The machines are noisy: the reference and the SDK run in alternating
-- rounds, and the median of the per-round ratios is reported with its range.
local ROUNDS = N >= 1000 and 9 or 1
local function rounds(reference, sdk)
  local refs, sdks, ratios = {}, {}, {}
  for r = 1, ROUNDS do
    refs[r] = reference()
    sdks[r] = sdk()
    ratios[r] = sdks[r] / refs[r]
  end
  table.sort(ratios)
  return median(refs), median(sdks), median(ratios), { ratios[1], ratios[#ratios] }
end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function free_port()
  local l = assert(core.listen(0))
  local port = l:port()
  l:close()
  return port
end

-- nginx -----------------------------------------------------------------------

local USER = '{"id":"2244994945","name":"X Developers","username":"XDevelopers"}'
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local port, tls_port = free_port(), free_port()
local base = "http://127.0.0.1:" .. port
local tls_base = "https://127.0.0.1:" .. tls_port
do
  local big = assert(io.open(dir .. "/big.json", "w"))
  local items = {}
  for i = 1, 900 do items[i] = ('{"id":"%d","text":"%s"}'):format(1460323743973015556 + i, ("x"):rep(80)) end
  big:write('{"data":[', table.concat(items, ","), '],"meta":{"result_count":900}}')
  big:close()
  local users = {}
  for i = 1, 50 do users[i] = ('{"id":"%d"}'):format(1720000000000001000 + i) end
  assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/key.pem -out %s/cert.pem -days 1 "
    .. "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1"):format(dir, dir)))
  local conf = assert(io.open(dir .. "/nginx.conf", "w"))
  conf:write(([[
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path %s/tmp;
  proxy_temp_path %s/tmp;
  fastcgi_temp_path %s/tmp;
  uwsgi_temp_path %s/tmp;
  scgi_temp_path %s/tmp;
  default_type application/json;
  server {
    listen 127.0.0.1:%d;
    location = /oauth/token { return 200 '{"access_token":"bench-token","expires_in":3600}'; }
    location = /api/v1/execute_tool { return 200 '{"data":{"data":%s},"execution_id":"bench"}'; }
    location = /2/users/2244994945 { return 200 '{"data":%s}'; }
    location = /2/users/2244994945/followers {
      return 200 '{"data":[%s],"meta":{"result_count":50,"next_token":"$request_id"}}';
    }
    location = /big { alias %s/big.json; }
  }
  server {
    listen 127.0.0.1:%d ssl http2;
    ssl_certificate %s/cert.pem;
    ssl_certificate_key %s/key.pem;
    keepalive_requests 1000000;
    location = /2/users/2244994945 {
      add_header x-rate-limit-limit 900;
      add_header x-rate-limit-remaining 899;
      add_header x-rate-limit-reset 1764460000;
      return 200 '{"data":%s}';
    }
  }
}
]]):format(dir, dir, dir, dir, dir, dir, dir, port, USER, USER, table.concat(users, ","), dir,
           tls_port, dir, dir, USER))
  conf:close()
  assert(os.execute("mkdir -p " .. dir .. "/tmp && nginx -q -c " .. dir .. "/nginx.conf -p " .. dir),
         "could not start nginx")
  for _ = 1, 50 do
    if transport.new{}:send{ url = base .. "/oauth/token", timeout = 1 } then break end
    core.sleep(0.1)
  end
end

local function stop_all()
  os.execute(("nginx -q -c %s/nginx.conf -p %s -s stop"):format(dir, dir))
  os.execute("rm -rf " .. dir)
end

local ok, err = pcall(function()
  -- 1. Call overhead vs the C loop --------------------------------------------
  local tw = twitter.new{ env_url = base, client_id = "bench", client_secret = "bench", identifier = "bench" }
  assert(tw:user_lookup{ id = "2244994945" })
  local body = twitter.json.encode(setmetatable({ connector = "twitter", identifier = "bench",
    params = setmetatable({ id = "2244994945" }, twitter.object_mt), tool_name = "twitter_user_lookup" },
    twitter.object_mt))
  -- The C loop sends the very header lines the SDK sends (libcurl adds the
  -- same Host and Content-Length).
  local bearer = { authorization = "Bearer bench-token" }
  local small_headers = transport.new{ headers = { ["x-sdk-version"] = transport.SDK_VERSION,
    ["x-api-version"] = scalekit.API_VERSION } }:lines_for{ method = "POST", url = base,
                                                            content_type = "application/json", override = bearer }
  local function quoted(headers)
    local out = {}
    for i, h in ipairs(headers) do out[i] = "'" .. h .. "'" end
    return out
  end
  local c_rss = 0
  local function c_loop(url, method, b, n, lines, env)
    local okc, out = sh(("%s%s/build/bench/c_loop '%s' %s '%s' %d %s"):format(env or "", ROOT, url, method, b, n,
                                                                           table.concat(lines, " ")))
    assert(okc, "c_loop failed: " .. out)
    local rate, rss = out:match("^([%d.]+)%s+([%d.]+)")
    c_rss = math.max(c_rss, tonumber(rss))
    return tonumber(rate)
  end
  -- The SDK side of a round runs in a fresh host process, as the C loop
  -- does: both start each round wherever the scheduler puts them (a round
  -- with client and server on one core runs about twice as fast as one
  -- across cores, and a long-lived process keeps its luck for every round).
  -- `setup` defines `call`, whose first call connects; `n` calls are timed,
  -- then `check` runs.  Returns calls/s and the peak RSS in MB.
  local function sdk_command(setup, n, check)
    return ("%s --no-env -e %q"):format(HOST, ([[
      local core = require "scalekit.core"
      local twitter = require "scalekit.twitter"
      %s
      assert(call())
      local t = core.monotonic()
      for _ = 1, %d do assert(call()) end
      local rate = %d / (core.monotonic() - t)
      %s
      print(rate, io.open("/proc/self/status"):read("a"):match("VmHWM:%%s*(%%d+) kB") / 1024)]]):format(
        setup, n, n, check or ""))
  end
  local function sdk_loop(setup, n, check)
    local oks, out = sh(sdk_command(setup, n, check))
    assert(oks, out)
    local rate, mb = out:match("([%d.]+)%s+([%d.]+)")
    return tonumber(rate), tonumber(mb)
  end
  local small_lines = quoted(small_headers)
  local small_setup = ([[
    local tw = twitter.new{ env_url = %q, client_id = "bench", client_secret = "bench", identifier = "bench" }
    local function call() return tw:user_lookup{ id = "2244994945" } end]]):format(base)
  -- the SDK's transport alone: the same bytes, no validation, no JSON
  local raw_setup = ([[
    local transport = require "scalekit.twitter.transport"
    local http = transport.new{ headers = { ["x-sdk-version"] = transport.SDK_VERSION,
                                            ["x-api-version"] = require("scalekit.twitter.scalekit").API_VERSION } }
    local req = { method = "POST", url = %q, body = %q, content_type = "application/json",
                  auth_line = "Authorization: Bearer bench-token" }
    local function call() return http:send(req) end]]):format(base .. "/api/v1/execute_tool", body)
  -- the floor of any Lua SDK on this core: the same tool call written by
  -- hand (the body encoded, one request with the SDK's transfer policies,
  -- the answer decoded), with no validation, account, retry policy, rate
  -- bookkeeping or result info
  local floor_parts = ([[
    local transport = require "scalekit.twitter.transport"
    local session = core.http_new{}
    local req = { method = "POST", url = %q, auth_line = "Authorization: Bearer bench-token",
      lines = core.http_lines(transport.new{ headers = { ["x-sdk-version"] = transport.SDK_VERSION,
        ["x-api-version"] = require("scalekit.twitter.scalekit").API_VERSION } }:lines_for{
        content_type = "application/json" }),
      body = %q, once = true, timeout = 60, connect_timeout = 10, stall_timeout = 30 }
    local function encode_body()
      return core.json_encode({ connector = "twitter", identifier = "bench", params = { id = "2244994945" },
                               tool_name = "twitter_user_lookup" })
    end]]):format(base .. "/api/v1/execute_tool", body)
  local floor_setup = floor_parts .. [[
    local function call()
      req.body = encode_body()
      local status, _, answer = session:request(req)
      return status == 200 and core.json_decode(answer).data
    end]]
  -- the same call as an MCP tools/call: the JSON-RPC line in, the tool run
  -- as a task on the server's loop (libcurl's multi interface), the
  -- answer encoded out (to a sink, not stdout)
  local mcp_setup = ([[
    local tasks = require "scalekit.twitter.tasks"
    local mcp = require "scalekit.twitter.mcp"
    local tw = twitter.new{ env_url = %q, client_id = "bench", client_secret = "bench", identifier = "bench" }
    local sched, answer = tasks.new(), nil
    local server = mcp.new{ client = tw, sched = sched, write = function(m) answer = m end }
    local line = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"twitter_user_lookup",'
      .. '"arguments":{"id":"2244994945"}}}'
    local function call()
      answer = nil
      server:handle_line(line)
      sched:run()
      return answer and answer.result and not answer.result.isError
    end]]):format(base)
  -- 0. Instructions per call (the primary measure) --------------------------
  -- callgrind counts the user-space instructions of the whole process; a
  -- run of IR_N calls minus a run of none (same start-up, same first call)
  -- over IR_N is the cost of one call.  Repeats agree within 1%, where
  -- wall-clock ratios on these machines swing with core placement.
  -- A garbage collection cycle lands in a window of 200 calls or not, which
  -- moves the figure by about 1%: the full run counts 1000 calls.
  local IR_N = N >= 1000 and 1000 or 200
  local function instructions(cmd)
    local file = os.tmpname()
    local env, rest = cmd:match("^([%u_]+=%S+ )(.*)$")
    local okv, log = sh(("%svalgrind --tool=callgrind --callgrind-out-file=%s %s 2>&1"):format(
      env or "", file, rest or cmd))
    assert(okv, "callgrind failed: " .. log:sub(-400))
    local f = assert(io.open(file))
    local text = f:read("a")
    f:close()
    local split = {}
    local ann = io.popen("callgrind_annotate --inclusive=no --threshold=100 " .. file .. " 2>/dev/null")
    for line in ann:lines() do
      local n, obj = line:match("^%s*([%d,]+) %([^)]*%)%s+%S+ %[([^%]]+)%]%s*$")
      if n then
        obj = obj:match("([^/]+)$"):gsub("%.so.*$", ""):gsub("%-[%d.]+$", "")
        split[obj] = (split[obj] or 0) + tonumber((n:gsub(",", "")))
      end
    end
    ann:close()
    if PROFILE_DIR then
      profile_seq = profile_seq + 1
      os.execute(("cp %s %s/callgrind.%02d"):format(file, PROFILE_DIR, profile_seq))
    end
    os.remove(file)
    return tonumber(text:match("\nsummary:%s*(%d+)") or text:match("\ntotals:%s*(%d+)")), split
  end
  -- instructions per call of command(n), and where they go (by object)
  local function per_call(command)
    local all, split = instructions(command(IR_N))
    local none, start = instructions(command(0))
    local by = {}
    for obj, n in pairs(split) do by[obj] = (n - (start[obj] or 0)) / IR_N end
    return (all - none) / IR_N, by
  end
  local have_valgrind = os.execute("command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null")
  if have_valgrind then
    local function c_command(url, method, b, lines, env)
      return function(n)
        return ("%s%s/build/bench/c_loop '%s' %s '%s' %d %s"):format(env or "", ROOT, url, method, b, n,
                                                                     table.concat(lines, " "))
      end
    end
    local c_ir = per_call(c_command(base .. "/api/v1/execute_tool", "POST", body, small_lines))
    local sdk_ir, sdk_by = per_call(function(n) return sdk_command(small_setup, n) end)
    local raw_ir, raw_by = per_call(function(n) return sdk_command(raw_setup, n) end)
    report("instructions: C loop execute_tool (small)", c_ir, "instr")
    report("instructions: SDK tw:user_lookup via Scalekit", sdk_ir, "instr", sdk_ir / c_ir, "<= 1.35")
    report("instructions: SDK transport alone (same bytes)", raw_ir, "instr", raw_ir / c_ir, "(reported)")
    local floor_ir = per_call(function(n) return sdk_command(floor_setup, n) end)
    report("instructions: the same call by hand on the core", floor_ir, "instr", floor_ir / c_ir, "(floor)")
    local mcp_ir, mcp_by = per_call(function(n) return sdk_command(mcp_setup, n) end)
    report("instructions: MCP tools/call of the same tool", mcp_ir, "instr", mcp_ir / sdk_ir, "(vs the SDK call)")
    if os.getenv("BENCH_STEPS") then
      -- BENCH_STEPS=1: where the call goes beyond the C loop, a piece at a
      -- time.  libcurl's price for each transfer policy the SDK's session
      -- sets (the C loop with one policy on, then all), the floor's own
      -- pieces, then the pipeline's steps, each run cumulatively (the step
      -- and all before it) and reported as the difference to the one before.
      -- Read them from a full run (1000 calls): with 200 the small lines
      -- move by about 1k.
      local function c_with(policies)
        return per_call(c_command(base .. "/api/v1/execute_tool", "POST", body, small_lines,
                                  "POLICIES=" .. policies .. " "))
      end
      for _, p in ipairs{ "gzip", "timeouts", "stall", "callbacks", "share", "gzip,timeouts,stall,callbacks,share" } do
        report("step: libcurl with " .. p, c_with(p) - c_ir, "instr", nil, "(over the C loop)")
      end
      -- `code` is the body of `call`, with the client's private state at
      -- hand (found the way a debugger would; no comments in the code: the
      -- shell joins its lines)
      local function sdk_step(code)
        return per_call(function(n)
          return sdk_command(([[
            local tools = require "scalekit.twitter.tools"
            local invoke = require "scalekit.twitter.invoke"
            local pipeline = require "scalekit.twitter.call"
            local tw = twitter.new{ env_url = %q, client_id = "bench", client_secret = "bench", identifier = "bench" }
            assert(tw:user_lookup{ id = "2244994945" })
            local function find(f, depth)
              for i = 1, 255 do
                local name, v = debug.getupvalue(f, i)
                if name == nil then return nil end
                if name == "state" and type(v) == "table" and v[tw] then return v[tw] end
                if type(v) == "function" and depth > 0 then
                  local found = find(v, depth - 1)
                  if found then return found end
                end
              end
            end
            local st = assert(find(twitter.new, 2), "the client's state")
            local b, tool, input = st.backend, tools.get("twitter_user_lookup"), { id = "2244994945" }
            local answer = %q
            %s
            local policy, rate = require "scalekit.twitter.policy", {}
            local raw_block = "HTTP/2 200 \r\nserver: nginx/1.22.1\r\ndate: Fri, 04 Dec 2026 20:00:00 GMT\r\n"
              .. "content-type: application/json\r\ncontent-length: 67\r\nx-rate-limit-limit: 900\r\n"
              .. "x-rate-limit-remaining: 899\r\nx-rate-limit-reset: 1764460000\r\n\r\n"
            local _ = tools, invoke, pipeline, b, tool, input, session, answer, req, policy, rate, raw_block
            local function call() %s end]]):format(base, '{"data":{"data":' .. USER .. '},"execution_id":"bench"}',
              floor_parts, code), n)
        end)
      end
      local pieces = {      -- what, the call's body, what it is measured against
        { "floor json_encode of the body", "return encode_body()" },
        { "floor json_decode of the answer", "return core.json_decode(answer)" },
        { "floor session:request", "return session:request(req) == 200", c_ir, "(over the C loop)" },
        { "direct mode's rate headers (3 lines)", [[local h = core.parse_headers(raw_block,
            policy.RATE_HEADER_PREFIXES) rate.k = policy.rate_of(h) return rate.k.remaining == 899]] },
      }
      for _, piece in ipairs(pieces) do
        report("step: " .. piece[1], sdk_step(piece[2]) - (piece[3] or 0), "instr", nil, piece[4] or "(alone)")
      end
      local steps = {
        { "tools.validate", "return tools.validate(tool, input)" },
        { "+ account context", "return invoke.prepare(tw, st, tool, input)" },
        { "+ request_for", "local p, ctx = invoke.prepare(tw, st, tool, input) return b:request_for(tool, p, ctx)" },
        { "+ authorize, policy.send", [[local p, ctx = invoke.prepare(tw, st, tool, input)
            local r = b:request_for(tool, p, ctx)
            assert(b:authorize(r, tool))
            r.timeout, r.connect_timeout, r.stall_timeout = 60, 10, 30
            return policy.send(b.http, r, b.settings, b.hints)]] },
        { "+ deadline, rate bookkeeping", [[local p, ctx = invoke.prepare(tw, st, tool, input)
            return pipeline.send(b, b:request_for(tool, p, ctx), b.settings, tool)]] },
        { "+ decode, result", [[local p, ctx = invoke.prepare(tw, st, tool, input)
            return pipeline.execute(b, tool, p, ctx)]] },
        { "+ the public method", [[return tw:user_lookup(input)]] },
      }
      local before = 0
      for _, step in ipairs(steps) do
        local ir = sdk_step(step[2])
        report("step: " .. step[1], ir - before, "instr", nil, "(over the step before)")
        before = ir
      end
    end
    local cert_file = dir .. "/cert.pem"
    local tls_setup = ([[
      local tw = twitter.new{ mode = "direct", api_base_url = %q, bearer_token = "bench-token", ca_file = %q }
      local function call() return tw:user_lookup{ id = "2244994945" } end]]):format(tls_base, cert_file)
    local tls_lines = quoted((transport.new{}:lines_for{ url = base, override = bearer }))
    local ct_ir = per_call(c_command(tls_base .. "/2/users/2244994945", "GET", "-", tls_lines,
                                     "CAFILE=" .. cert_file .. " "))
    local st_ir, st_by = per_call(function(n) return sdk_command(tls_setup, n) end)
    report("instructions: C loop GET /2/users/:id over TLS", ct_ir, "instr")
    report("instructions: SDK direct tw:user_lookup over TLS", st_ir, "instr", st_ir / ct_ir, "<= 1.35")
    -- decoding 100 KB of JSON into Lua tables: the SDK's codec against
    -- Debian's lua-cjson, both under lua5.4
    local function decode_command(mod, fn)
      return function(n)
        return ("LUA_CPATH='%s' lua5.4 -e %q"):format(ROOT .. "/build/?.so;;", ([[
          local decode = require(%q).%s
          local f = io.open(%q); local text = f:read("a"); f:close()
          decode(text)
          for _ = 1, %d do decode(text) end]]):format(mod, fn, dir .. "/big.json", n))
      end
    end
    local cj_ir = per_call(decode_command("cjson", "decode"))
    local sj_ir, sj_by = per_call(decode_command("scalekit.core", "json_decode"))
    report("instructions: lua-cjson decode 100 KB", cj_ir, "instr")
    report("instructions: SDK json_decode 100 KB", sj_ir, "instr", sj_ir / cj_ir, "<= 1.00")
    splits = { { "tool call via Scalekit", sdk_by }, { "transport alone", raw_by }, { "MCP tools/call", mcp_by },
               { "direct over TLS", st_by }, { "100 KB decode", sj_by } }
    if os.getenv("BENCH_IR_ONLY") then return end   -- the instruction lines alone
  else
    io.stderr:write("skipped the instruction counts: valgrind is not installed\n")
  end

  local c_small, sdk_small, r_small, s_small = rounds(
    function() return c_loop(base .. "/api/v1/execute_tool", "POST", body, N, small_lines) end,
    function() return (sdk_loop(small_setup, N)) end)
  report("C loop: execute_tool (small)", c_small, "calls/s")
  report("SDK: tw:user_lookup via Scalekit (small)", sdk_small, "calls/s", r_small, ">= 0.85", s_small)
  -- Where the difference goes: the SDK's transport alone (same bytes, no
  -- validation, no JSON either way), against the C loop.
  local _, sdk_raw, r_raw, s_raw = rounds(
    function() return c_loop(base .. "/api/v1/execute_tool", "POST", body, N, small_lines) end,
    function() return (sdk_loop(raw_setup, N)) end)
  report("SDK transport alone (same bytes, no JSON)", sdk_raw, "calls/s", r_raw, "(reported)", s_raw)
  local _, mcp_rate, r_mcp, s_mcp = rounds(
    function() return (sdk_loop(small_setup, N)) end,
    function() return (sdk_loop(mcp_setup, N)) end)
  report("MCP tools/call (same tool, in-process server)", mcp_rate, "calls/s", r_mcp, "(vs the SDK call)", s_mcp)

  local bigN = math.max(10, N // 5)
  local big_lines = quoted((transport.new{}:lines_for{ url = base, override = bearer }))
  local big_setup = ([[
    local tw = twitter.new{ mode = "direct", api_base_url = %q, bearer_token = "bench-token" }
    local function call() return tw:request{ path = "/big" } end]]):format(base)
  local c_big, sdk_big_raw, r_big, s_big = rounds(
    function() return c_loop(base .. "/big", "GET", "-", bigN, big_lines) end,
    function() return (sdk_loop(big_setup, bigN)) end)
  report("C loop: GET 100 KB", c_big, "calls/s")
  report("SDK: tw:request 100 KB (raw body, lazy .json)", sdk_big_raw, "calls/s", r_big, ">= 0.85", s_big)

  -- 2. Concurrency: ceil(N/C)*L ------------------------------------------------
  local fake = assert(io.popen(("exec python3 %s/sandbox/fake_scalekit.py --port 0 --account twitter:bench")
    :format(ROOT)))
  local fport = tonumber(fake:read("l"):match("PORT (%d+)"))
  local furl = "http://127.0.0.1:" .. fport
  local ctl = transport.new{}
  ctl:send{ method = "POST", url = furl .. "/__sandbox/config", json = { latency = 0.02 } }
  local tw2 = twitter.new{ env_url = furl, client_id = "sandbox-client", client_secret = "sandbox-secret-s3kr1t",
                           identifier = "bench" }
  local calls = {}
  local CN = math.min(1000, N)
  for i = 1, CN do calls[i] = { "user_lookup", { id = tostring(i) } } end
  assert(tw2:user_me{})
  local t = core.monotonic()
  local res = tw2:batch(calls, { concurrency = 16 })
  local elapsed = core.monotonic() - t
  for _, r in ipairs(res) do assert(r.data, r.err and tostring(r.err)) end
  local ideal = math.ceil(CN / 16) * 0.02
  report(("batch: %d calls, C=16, L=20 ms"):format(CN), elapsed, "s", elapsed / ideal, "<= 1.3 x ideal")
  ctl:send{ method = "POST", url = furl .. "/__sandbox/shutdown" }
  fake:close()

  -- 3. Memory: peak RSS of the host ------------------------------------------------
  local function peak(code)
    local okp, out = sh(("%s --no-env -e %q 2>&1"):format(HOST, code .. [[
      print(io.open("/proc/self/status"):read("a"):match("VmHWM:%s*(%d+) kB"))]]))
    assert(okp, out)
    return tonumber(out:match("(%d+)%s*$")) / 1024
  end
  local empty = peak("")
  local calls_rss = peak(([[
    local tw = require("scalekit.twitter").new{ env_url = %q, client_id = "b", client_secret = "b", identifier = "b" }
    for _ = 1, %d do assert(tw:user_lookup{ id = "2244994945" }) end]]):format(base, math.max(10, N * 2)))
  report(("memory: host running %d calls"):format(math.max(10, N * 2)), calls_rss, "MB", calls_rss / empty,
         "flat (vs empty host)")
  local pages = math.max(2, N // 2)
  local page_rss = peak(([[
    local tw = require("scalekit.twitter").new{ mode = "direct", api_base_url = %q, bearer_token = "b" }
    local n = 0
    for item in tw:items("followers_get", { id = "2244994945", max_results = 1000 }, { pages = %d }) do
      n = n + 1
    end
    assert(n == %d, n)]]):format(base, pages, pages * 50))
  report(("memory: paging %d items"):format(pages * 50), page_rss, "MB", page_rss / empty, "flat (vs empty host)")

  -- 4. Direct mode over TLS vs the libraries users pick for X ------------------------
  local cert = dir .. "/cert.pem"
  local PN = math.max(20, N // 2)
  local tls_lines = big_lines
  local sdk_mbs = {}
  local c_tls, sdk_rate, r_tls, s_tls = rounds(
    function()
      return c_loop(tls_base .. "/2/users/2244994945", "GET", "-", PN, tls_lines, "CAFILE=" .. cert .. " ")
    end,
    function()
      local rate, mb = sdk_loop(([[
        local tw = twitter.new{ mode = "direct", api_base_url = %q, bearer_token = "bench-token", ca_file = %q }
        local function call() return tw:user_lookup{ id = "2244994945" } end]]):format(tls_base, cert), PN,
        [[assert(tw:rate_limit("user_lookup").remaining == 899, "X's rate-limit headers were read")]])
      sdk_mbs[#sdk_mbs + 1] = mb
      return rate
    end)
  local sdk_mb = median(sdk_mbs)
  report("C loop: GET /2/users/:id over TLS", c_tls, "calls/s")
  report("SDK direct: tw:user_lookup over TLS", sdk_rate, "calls/s", r_tls, ">= 0.85", s_tls)
  report("C loop: peak RSS (libcurl loaded, same calls)", c_rss, "MB")
  report("SDK direct: peak RSS", sdk_mb, "MB", sdk_mb / c_rss, "(vs the C loop)")
  report("SDK direct: peak RSS above the C loop", sdk_mb - c_rss, "MB", nil, "<= 2 MB (the libcurl floor + 2 MB)")
  local peers = {
    { "tweepy (Debian python3-tweepy)", ("REQUESTS_CA_BUNDLE=%s /usr/bin/python3 %s/bench/peers/tweepy_loop.py %s %d")
      :format(cert, ROOT, tls_base, PN) },
    { "twitter-api-v2 (npm)", ("cd %s/bench/peers && NODE_EXTRA_CA_CERTS=%s node twitter_api_v2_loop.js %s %d")
      :format(ROOT, cert, tls_base, PN) },
  }
  for _, peer in ipairs(peers) do
    local okp, pout = sh(peer[2] .. " 2>&1")
    local rate, mb = pout:match("^([%d.]+)%s+([%d.]+)")
    if okp and rate then
      report(peer[1] .. ": same call", tonumber(rate), "calls/s", sdk_rate / tonumber(rate), "SDK / peer")
      report(peer[1] .. ": peak RSS", tonumber(mb), "MB", tonumber(mb) / sdk_mb, "peer / SDK")
    else
      io.stderr:write(("skipped %s (not installed? make bench-peers): %s\n"):format(peer[1], pout:sub(1, 200)))
    end
  end

  -- 5. The official Node SDK (gRPC) for the same Scalekit call --------------------------
  local grpc = io.popen(("cd %s/bench/peers && exec node grpc_server.js 2>&1"):format(ROOT))
  local gline = grpc:read("l") or ""
  local gport = gline:match("^PORT (%d+)")
  if gport then
    local oko, oout = sh(("cd %s/bench/peers && node official_sdk_loop.js %s %d 2>&1"):format(ROOT, gport, PN))
    local rate, mb = oout:match("^([%d.]+)%s+([%d.]+)")
    if oko and rate then
      report("@scalekit-sdk/node executeTool (gRPC)", tonumber(rate), "calls/s", sdk_small / tonumber(rate),
             "SDK / official >= 5")
      report("@scalekit-sdk/node: peak RSS", tonumber(mb), "MB", tonumber(mb) / calls_rss, "official / SDK >= 10")
    else
      io.stderr:write("skipped the official SDK: " .. oout:sub(1, 200) .. "\n")
    end
    sh("pkill -f 'node grpc_server.js'")
  else
    io.stderr:write("skipped the official SDK (make bench installs it into bench/peers): " .. gline .. "\n")
  end
  grpc:close()

  -- 6. Start-up ----------------------------------------------------------------------
  local function timeit(cmd, runs)
    local t0 = core.monotonic()
    for _ = 1, runs do assert(os.execute(cmd .. " >/dev/null")) end
    return (core.monotonic() - t0) / runs * 1000
  end
  local runs = math.max(3, math.min(30, N // 100))
  local lua_alone = timeit("lua5.4 -e ''", runs)
  local with_sdk = timeit(HOST .. [[ --no-env -e 'require "scalekit.twitter"']], runs)
  report("start-up: lua5.4 -e ''", lua_alone, "ms")
  report("start-up: scalekit-lua + require SDK", with_sdk, "ms", with_sdk / lua_alone, "(reported)")
  if os.execute(("test -d %s/bench/peers/node_modules/@scalekit-sdk/node"):format(ROOT)) then
    local node_sdk = timeit(("cd %s/bench/peers && node -e 'require(\"@scalekit-sdk/node\")'"):format(ROOT), runs)
    report("start-up: node + require @scalekit-sdk/node", node_sdk, "ms", node_sdk / with_sdk, "official / SDK")
  end
end)
stop_all()
if not ok then error(err, 0) end

-- Markdown for BENCHMARKS.md
for _, sp in ipairs(splits) do
  print(("Where the instructions of one %s go (per call, by object): %s"):format(sp[1], where(sp[2])))
end
print("")
print("| benchmark | value | ratio | target |")
print("|---|---:|---:|---|")
for _, r in ipairs(results) do
  local ratio = r[4] and ("%.2f"):format(r[4]) or ""
  if r[6] and r[6][1] ~= r[6][2] then ratio = ratio .. (" (%.2f–%.2f)"):format(r[6][1], r[6][2]) end
  print(("| %s | %.1f %s | %s | %s |"):format(r[1], r[2], r[3], ratio, r[5] or "reference"))
end
