-- wrk script: HTTP/1.1 pipelining, DEPTH (default 16) GETs of the URL's path per write.
local depth = tonumber(os.getenv("DEPTH") or "16")

init = function(args)
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, wrk.path) end
  req = table.concat(r)
end

request = function()
  return req
end
