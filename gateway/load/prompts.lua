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
-- 32 English chat prompts of 11 to 14 words (chat_prompts.txt, which embed_bench reads too),
-- for the load test with the real sentence-embedding model (model.sh).
function M.english()
  local list = {}
  for line in io.lines("gateway/load/chat_prompts.txt") do
    if line ~= "" then list[#list + 1] = line end
  end
  return list
end
-- A run of marks that encodes k (in base #marks): distinct k, distinct runs.
function M.suffix(k, marks)
  local s = ""
  repeat
    s = s .. marks[k % #marks + 1]
    k = math.floor(k / #marks)
  until k == 0
  return s
end
-- The request for a chat completion of `text`.
function M.post(text)
  return wrk.format("POST", "/v1/chat/completions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer load-test"},
    M.body(text))
end
-- A setup function that numbers wrk's threads from `base` (each thread's number is its global
-- `id`), so that each thread's texts differ from every other thread's.
function M.numbered_threads(base)
  local next_id = base
  return function(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
  end
end
-- A request function that asks the prompts of `list` in turn.
function M.cycle(list)
  local n = 0
  return function()
    n = n + 1
    return M.post(list[n % #list + 1])
  end
end
function M.body(text)
  return string.format('{"model":"m","temperature":0,"messages":[{"role":"user","content":"%s"}]}', text)
end
return M
