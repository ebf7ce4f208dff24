-- wrk_stop_after.lua - wrk script: each thread stops after WRK_MAX_PER_THREAD responses (default 10000), so a keep-alive run leaks a bounded amount.
local limit = tonumber(os.getenv("WRK_MAX_PER_THREAD") or "10000")
local seen = 0

function response(status, headers, body)
  seen = seen + 1
  if seen >= limit then
    wrk.thread:stop()
  end
end
