-- POST an OpenAI Chat Completions request (not streamed) to the URL's path,
-- /v1/chat/completions. The model is the first script argument (default "up":
-- the daemon routes it to that provider instance; nginx ignores it).
-- Further arguments are extra request headers, "Name: value" (a gateway's
-- routing headers, e.g. Portkey's x-portkey-provider).
-- usage: wrk ... -s post_chat.lua http://HOST:PORT/v1/chat/completions -- MODEL [HEADER...]
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "../http_send/?.lua;" .. package.path
require "wrk_common"

function init(args)
   local model = args[1] or "up"
   wrk.method = "POST"
   wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello world"}]}'
   wrk.headers["Content-Type"] = "application/json"
   for i = 2, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      if name then wrk.headers[name] = value end
   end
end
