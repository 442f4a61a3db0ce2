-- Paraphrase hits with the real model: every request is one of the 32 stored English prompts with
-- its final question mark replaced by a punctuation run that encodes a per-thread counter, so no
-- text is ever sent twice: the exact tier and the aliases miss, the text is embedded (a forward
-- pass of the model) and the semantic tier finds the stored prompt.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("prompts")
local list = p.english()
local marks = { "?", "!", "." }
-- THREAD_BASE in the environment keeps a later run's phrasings apart from an earlier run's.
setup = p.numbered_threads(tonumber(os.getenv("THREAD_BASE") or "0"))
local n = 0
request = function()
  n = n + 1
  local base = list[n % #list + 1]
  return p.post(string.sub(base, 1, -2) .. p.suffix(id, marks) .. " " .. p.suffix(math.floor(n / #list), marks))
end
