-- Shared by read.lua and write.lua (loaded with dofile from $BENCH_LUA).
-- A run's parameters come from a file named by the first script argument: one "key value" per line;
-- keys starting with "@" are list items (e.g. "@token ...", "@nhs ...").
P, L = {}, {}
local threads, next_id = {}, 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function load_params(args)
  for line in io.lines(args[1]) do
    local key, value = line:match("^(%S+) (.*)$")
    if key and key:sub(1, 1) == "@" then
      local name = key:sub(2)
      L[name] = L[name] or {}
      table.insert(L[name], value)
    elseif key then
      P[key] = value
    end
  end
  nthreads = tonumber(P.threads or "1")
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

-- "{{name}}" placeholders, compiled once, rendered per request by concatenation.
function compile(text)
  local parts, i = {}, 1
  while true do
    local a, b, name = text:find("{{(%w+)}}", i)
    if not a then
      table.insert(parts, text:sub(i))
      return parts
    end
    table.insert(parts, text:sub(i, a - 1))
    table.insert(parts, { name })
    i = b + 1
  end
end

function render(parts, values)
  local out = {}
  for k, part in ipairs(parts) do
    out[k] = type(part) == "table" and values[part[1]] or part
  end
  return table.concat(out)
end

function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

function pick(list)
  return list[math.random(#list)]
end

function uuid4()
  return string.format("%08x-%04x-4%03x-%04x-%06x%06x", math.random(0, 0x7fffffff), math.random(0, 0xffff),
    math.random(0, 0xfff), 0x8000 + math.random(0, 0x3fff), math.random(0, 0xffffff), math.random(0, 0xffffff))
end

-- Static headers ("@header Name: value") plus a random bearer token when tokens are given.
function headers(extra)
  local h = {}
  for _, line in ipairs(L.header or {}) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    h[name] = value
  end
  if L.token then h["Authorization"] = "Bearer " .. pick(L.token) end
  for name, value in pairs(extra or {}) do h[name] = value end
  return h
end

function done(summary, latency, requests)
  local statuses, cycles = {}, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do statuses[status] = (statuses[status] or 0) + n end
    cycles = cycles + (thread:get("cycles") or 0)
  end
  local parts = {}
  for status, n in pairs(statuses) do table.insert(parts, string.format('"%s":%d', status, n)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"cycles":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    cycles, table.concat(parts, ",")))
end
