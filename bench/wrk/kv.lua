-- wrk script for the kv-throughput bench (bench/kv-throughput.ts).
--
--   wrk ... -s bench/wrk/kv.lua URL -- <system> <op> <keyspace> <value-bytes> [<token>|-]
--
-- system: "muster" (PUT/GET /v1/kv/<key>, raw bytes) or "etcd" (POST /v3/kv/put and
-- /v3/kv/range on etcd's JSON gateway, keys and values in base64).
-- op: "put" or "get". Each request picks a key uniformly from the keyspace. Keys are
-- "/bench/k%08d", 16 bytes. done() prints one line, "BENCH_RESULT {json}", that the
-- bench parses; latencies there are in microseconds.

local system, op, keyspace
local paths = {}   -- muster: the request path of each key
local bodies = {}  -- etcd: the JSON body of each key's request (put or range)
local value
local headers
local get_headers

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1)
      .. (b and B64:sub(c3 + 1, c3 + 1) or '=') .. (c and B64:sub(c4 + 1, c4 + 1) or '=')
  end
  return table.concat(out)
end

local next_thread = 0

-- Runs in the main Lua state once per thread, before that thread's init().
function setup(thread)
  thread:set('thread_index', next_thread)
  next_thread = next_thread + 1
end

-- Runs in each thread: precompute every key's path or body so request() only picks one.
function init(args)
  system, op, keyspace = args[1], args[2], tonumber(args[3])
  local value_bytes = tonumber(args[4])
  if (system ~= 'muster' and system ~= 'etcd') or (op ~= 'put' and op ~= 'get') or not keyspace or not value_bytes then
    error('usage: -- <muster|etcd> <put|get> <keyspace> <value-bytes>')
  end

  -- The same printable value in every thread and run, so both systems store the same bytes.
  math.randomseed(42)
  local chars = {}
  for i = 1, value_bytes do
    chars[i] = string.char(math.random(97, 122))
  end
  value = table.concat(chars)
  local value64 = base64(value)

  for i = 1, keyspace do
    local key = string.format('/bench/k%08d', i - 1)
    if system == 'muster' then
      paths[i] = '/v1/kv' .. key
    elseif op == 'put' then
      bodies[i] = '{"key":"' .. base64(key) .. '","value":"' .. value64 .. '"}'
    else
      bodies[i] = '{"key":"' .. base64(key) .. '"}'
    end
  end

  if system == 'muster' then
    headers = { ['Content-Type'] = 'application/octet-stream' }
    get_headers = {}
    -- A muster server with auth on takes the token as a bearer header.
    if args[5] and args[5] ~= '-' then
      headers['Authorization'] = 'Bearer ' .. args[5]
      get_headers['Authorization'] = 'Bearer ' .. args[5]
    end
  else
    headers = { ['Content-Type'] = 'application/json' }
  end
  math.randomseed(os.time() * 1000 + (thread_index or 0))
end

function request()
  local i = math.random(keyspace)
  if system == 'muster' then
    if op == 'put' then
      return wrk.format('PUT', paths[i], headers, value)
    end
    return wrk.format('GET', paths[i], get_headers)
  end
  if op == 'put' then
    return wrk.format('POST', '/v3/kv/put', headers, bodies[i])
  end
  return wrk.format('POST', '/v3/kv/range', headers, bodies[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
