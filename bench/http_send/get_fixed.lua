-- GET the URL as given (the nginx baseline); only adds the RESULT line.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require "wrk_common"
