-- Every request the same prompt: after the first, exact hits.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer load-test"
wrk.body = '{"model":"m","temperature":0,"messages":[{"role":"user","content":"How do I reset my password?"}]}'
