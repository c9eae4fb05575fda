-- wrk script for benches/hyper_instructions.sh: stop after WRK_REQUESTS responses, so both
-- servers serve the same number of requests under callgrind.
local n = 0
local limit = tonumber(os.getenv("WRK_REQUESTS"))
response = function(status, headers, body)
  n = n + 1
  if n >= limit then wrk.thread:stop() end
end
