-- Runs one of the http_send wrk scripts (SWH_BENCH_SCRIPT names it:
-- post_messages.lua or get_messages.lua) with the API key in SWH_BENCH_KEY as
-- `Authorization: Bearer`, so the daemons' auth and their limits (shared or
-- local) are on the measured path. The key is not a wrk argument so that it
-- never shows in a process list.
-- usage: SWH_BENCH_SCRIPT=post_messages.lua SWH_BENCH_KEY=... \
--          wrk ... -s with_key.lua URL -- SESSIONS_FILE
local here = debug.getinfo(1, "S").source:match("^@(.*/)")
local script = os.getenv("SWH_BENCH_SCRIPT")
local key = assert(os.getenv("SWH_BENCH_KEY"), "SWH_BENCH_KEY is not set")
dofile(here .. "../http_send/" .. assert(script, "SWH_BENCH_SCRIPT is not set"))

local inner_init = init
function init(args)
   inner_init(args)
   wrk.headers["Authorization"] = "Bearer " .. key
end
