-- Paraphrase hits with the real model: every request is one of the 32 stored prompts with its
-- final question mark replaced by a punctuation run that encodes a per-thread counter, so no text
-- is ever sent twice: the exact tier and the aliases miss, the text is embedded (a forward pass
-- of the model) and the semantic tier finds the stored prompt.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("model_prompts")
local list = p.prompts()
local marks = { "?", "!", "." }
-- THREAD_BASE in the environment keeps a later run's phrasings apart from an earlier run's.
next_thread = tonumber(os.getenv("THREAD_BASE") or "0")
setup = function(thread)
  thread:set("id", next_thread)
  next_thread = next_thread + 1
end
local n = 0
local function suffix(k)
  local s = ""
  repeat
    s = s .. marks[k % 3 + 1]
    k = math.floor(k / 3)
  until k == 0
  return s
end
request = function()
  n = n + 1
  local base = list[n % #list + 1]
  local text = string.sub(base, 1, -2) .. suffix(id) .. " " .. suffix(math.floor(n / #list))
  return wrk.format("POST", "/v1/chat/completions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer load-test"},
    p.body(text))
end
