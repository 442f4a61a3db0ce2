-- A new prompt of random tokens on every request: misses, each one an upstream call. Each wrk
-- thread seeds its own generator (setup hands out the seeds), so no two requests repeat. Runs that
-- must not repeat an earlier run's prompts start from another seed: SEED_BASE in the environment.
next_seed = tonumber(os.getenv("SEED_BASE") or "1000")
setup = function(thread)
  thread:set("seed", next_seed)
  next_seed = next_seed + 1
end
init = function()
  math.randomseed(seed)
end
request = function()
  local text = string.format("%08x %08x %08x %08x", math.random(0, 0x7fffffff),
    math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  return wrk.format("POST", "/v1/chat/completions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer load-test"},
    string.format('{"model":"m","temperature":0,"messages":[{"role":"user","content":"%s"}]}', text))
end
