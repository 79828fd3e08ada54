-- GET /v1/sessions/{id}/messages?limit=50 over the sessions listed in the
-- file given as the first script argument.
-- usage: wrk ... -s get_messages.lua URL -- SESSIONS_FILE
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
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
   next_index = math.random(#ids)
end

function request()
   local id = ids[next_index]
   next_index = next_index % #ids + 1
   return wrk.format("GET", "/v1/sessions/" .. id .. "/messages?limit=50")
end
