-- Stores the 32 prompts of model_prompts.lua: each request asks the next one, in turn.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("model_prompts")
local list = p.prompts()
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/chat/completions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer load-test"},
    p.body(list[n % #list + 1]))
end
