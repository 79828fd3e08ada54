-- POST {"content":"hello world"} to /v1/sessions/{id}/messages, spreading the
-- requests over the sessions listed (one id a line) in the file given as the
-- first script argument, so no single session row is hot.
-- usage: wrk ... -s post_messages.lua URL -- SESSIONS_FILE
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require "wrk_common"

local ids = {}
local next_index = 1

function init(args)
   local f = assert(io.open(args[1], "r"))
   for line in f:lines() do
      if #line > 0 then ids[#ids + 1] = line end
   end
   f:close()
   assert(#ids > 0, "no session ids in " .. args[1])
   -- Each wrk thread has its own Lua state: start threads at different places.
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
   next_index = math.random(#ids)
   wrk.method = "POST"
   wrk.body = '{"content":"hello world"}'
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local id = ids[next_index]
   next_index = next_index % #ids + 1
   return wrk.format(nil, "/v1/sessions/" .. id .. "/messages")
end
