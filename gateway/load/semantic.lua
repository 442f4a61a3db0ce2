-- Semantic hits: every request a phrasing of one of the 100 stored prompts that nobody has sent
-- before, so the exact tier (and its aliases) miss and the semantic tier answers: embedding and
-- vector search on every request. The phrasing is the stored prompt followed by a punctuation
-- run that encodes a per-thread counter; the lexical embedder ignores punctuation, so the match
-- is the stored prompt (similarity 1.0), while the exact tier sees a new text each time.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("prompts")
local list = p.prompts()
local marks = { "!", "#", "$", "%", "&", "*", "+", ",", "-", ".", "/", ":", ";", "<", "=", ">" }
next_thread = 0
setup = function(thread)
  thread:set("id", next_thread)
  next_thread = next_thread + 1
end
local n = 0
local function suffix(k)
  local s = ""
  repeat
    s = s .. marks[k % 16 + 1]
    k = math.floor(k / 16)
  until k == 0
  return s
end
request = function()
  n = n + 1
  local text = list[n % #list + 1] .. suffix(id) .. "@" .. suffix(n)
  return wrk.format("POST", "/v1/chat/completions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer load-test"},
    p.body(text))
end
