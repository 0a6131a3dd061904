-- wrk script: POST /v1/payments with a payments key, a unique Idempotency-Key per request
-- (required), charging one token (the sandbox approves; the token's CVC goes with the first
-- payment only). Env: PAY_KEY (secret key with the payments role), TOKEN (tok_…), TAG.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PAY_KEY")
wrk.body = '{"amount":1000,"currency":"usd","token":"' .. os.getenv("TOKEN") .. '"}'

local counter = 0
-- TAG (set per wrk process by run.sh) keeps keys of concurrent wrk processes apart; keys.lua
-- adds a random part, so runs sharing a TAG (warm-up and measured run) differ too.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local thread_tag = dofile(here .. "keys.lua").thread_tag()

request = function()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = thread_tag .. "-pay-" .. counter
  return wrk.format()
end
