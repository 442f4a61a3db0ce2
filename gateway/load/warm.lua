-- Stores the 100 prompts: run with 100 connections, so each is asked once at the start.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("prompts")
local list = p.prompts()
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/chat/completions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer load-test"},
    p.body(list[n % #list + 1]))
end
