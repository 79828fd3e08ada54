-- POST a user message to /v1/sessions/{id}/messages, spread over the session
-- ids listed (one a line) in the file given as the first script argument.
-- The same script drives both runs of bench/pipeline/run.sh.
-- usage: wrk ... -s post_pipeline.lua URL -- SESSIONS_FILE
local ids = {}
local next_index = 1

function init(args)
   local f = assert(io.open(args[1], "r"))
   for line in f:lines() do
      if #line > 0 then ids[#ids + 1] = line end
   end
   f:close()
   assert(#ids > 0, "no session ids in " .. args[1])
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
   next_index = math.random(#ids)
   wrk.method = "POST"
   -- a blocked word for the content filter, a question for the analytics rules
   wrk.body = '{"content":"hello world, is this spam or a great answer? call 555-1234"}'
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local id = ids[next_index]
   next_index = next_index % #ids + 1
   return wrk.format(nil, "/v1/sessions/" .. id .. "/messages")
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d seconds=%.2f rps=%.1f p50_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50), latency:percentile(99), latency.max, summary.errors.status,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
