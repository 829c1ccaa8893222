-- Write scenarios: create an indicator for a girl from this thread's share of "@write", then remove
-- it (PUT, entered-in-error) as soon as a connection is free; she goes back to the pool after the
-- removal. With read_fraction > 0 that share of requests are searches ("@found" / "@none" alternately).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local free, pending = {}, {}
local create_body, remove_body, search_path
local read_fraction, flip = 0, false
statuses, cycles = {}, 0

function init(args)
  load_params(args)
  for i, nhs in ipairs(L.write) do
    if i % nthreads == tid then table.insert(free, nhs) end
  end
  create_body = compile(read_file(P.create_file))
  remove_body = compile(read_file(P.remove_file))
  search_path = compile(P.search_path or "")
  read_fraction = tonumber(P.read_fraction or "0")
end

local json = { ["Content-Type"] = "application/fhir+json" }

function request()
  if read_fraction > 0 and math.random() < read_fraction then
    flip = not flip
    return wrk.format("GET", render(search_path, { nhs = pick(flip and L.found or L.none) }), headers())
  end
  local removal = table.remove(pending)
  if removal then
    return wrk.format("PUT", P.flag_path .. "/" .. removal.id, headers(json), render(remove_body, removal))
  end
  local nhs = table.remove(free, 1)
  if not nhs then  -- every girl of this thread is in flight: should not happen with the pool sizes used
    return wrk.format("GET", "/_ping")
  end
  return wrk.format("POST", P.flag_path, headers(json), render(create_body, { nhs = nhs }))
end

function response(status, hdrs, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == 201 then
    table.insert(pending, { id = body:match('"id":"([^"]+)"'), nhs = body:match('nhs%-number","value":"(%d+)"') })
  elseif status == 200 and body:sub(1, 22) == '{"resourceType":"Flag"' then
    table.insert(free, body:match('nhs%-number","value":"(%d+)"'))
    cycles = cycles + 1
  end
end
