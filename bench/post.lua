-- wrk script for the Tollway bench: POST the bytes of $BENCH_BODY to $BENCH_PATH with a bearer key.
-- At the end it prints one line, "RESULT {json}", that bench/load.py reads.
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local payload = file:read("*a")
file:close()

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.body = payload
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")

function done(summary, latency, requests)
  local errors = summary.errors
  local seconds = summary.duration / 1e6
  local ms = function(us) return us / 1000 end
  io.write(string.format(
    'RESULT {"requests":%d,"secs":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"mean_ms":%.3f,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_timeout":%d,"err_status":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency.max), ms(latency.mean),
    errors.connect, errors.read, errors.write, errors.timeout, errors.status))
end
