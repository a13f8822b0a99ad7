-- wrk script for benches/load.sh: with env PROFILE, POST that file as JSON with a bearer
-- token (env TOKEN); without it, a plain GET. Prints one line: requests/s, p50/p99/max
-- latency and errors (non-2xx count as errors).
local profile = os.getenv("PROFILE")
if profile and profile ~= "" then
  local file = assert(io.open(profile, "r"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
end

function done(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.2f ms  p99 %.2f ms  max %.2f ms  errors %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
