-- Read scenarios: a GET of "path" or a POST of "body_file", each with a random NHS number ({{nhs}})
-- from the "@nhs" list and a fresh message id ({{id}}), and a random token from "@token" if any.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local path, body, method

function init(args)
  load_params(args)
  method = P.method or "GET"
  path = compile(P.path)
  if P.body_file then body = compile(read_file(P.body_file)) end
end

function request()
  local values = { nhs = pick(L.nhs), id = uuid4() }
  return wrk.format(method, render(path, values), headers(), body and render(body, values) or nil)
end
