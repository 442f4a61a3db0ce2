-- Stores the 32 English prompts (chat_prompts.txt): each request asks the next one, in turn.
package.path = package.path .. ";gateway/load/?.lua"
local p = require("prompts")
request = p.cycle(p.english())
