-- Shared by the wrk scripts: one machine-readable line at the end, so
-- run.sh does not have to parse wrk's human output.
--   RESULT requests=.. seconds=.. rps=.. p50_us=.. p99_us=.. max_us=..
--          non2xx=.. connect_err=.. read_err=.. write_err=.. timeouts=..
function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d seconds=%.2f rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
      "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50), latency:percentile(99), latency.max,
      summary.errors.status, summary.errors.connect, summary.errors.read,
      summary.errors.write, summary.errors.timeout))
end
