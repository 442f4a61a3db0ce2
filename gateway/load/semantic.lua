-- Semantic hits: every request a phrasing of one of the 100 stored prompts that nobody has sent
-- before, so the exact tier (and its aliases) miss and the semantic tier answers: embedding and
-- vector search on every request. The phrasing is the stored prompt followed by a punctuation
-- run that encodes a per-thread counter; the lexical embedder ignores punctuation, so the match
-- is the stored prompt (similarity 1.0), while the exact tier sees a new text each time.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("prompts")
local list = p.prompts()
local marks = { "!", "#", "$", "%", "&", "*", "+", ",", "-", ".", "/", ":", ";", "<", "=", ">" }
setup = p.numbered_threads(0)
local n = 0
request = function()
  n = n + 1
  return p.post(list[n % #list + 1] .. p.suffix(id, marks) .. "@" .. p.suffix(n, marks))
end
