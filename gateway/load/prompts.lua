-- 100 prompts of random upper-case tokens, the same in every wrk thread. Random tokens keep them
-- apart for the gateway's lexical embedder, which a shared sentence template would not.
local M = {}
function M.prompts()
  math.randomseed(42)
  local list = {}
  for i = 1, 100 do
    list[i] = string.format("%08X %08X %08X %08X?", math.random(0, 0x7fffffff),
      math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  end
  return list
end
function M.body(text)
  return string.format('{"model":"m","temperature":0,"messages":[{"role":"user","content":"%s"}]}', text)
end
return M
