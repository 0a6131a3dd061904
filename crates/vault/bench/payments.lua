-- wrk script: POST /v1/payments with a payments key, a unique Idempotency-Key per request
-- (required), charging one token (the sandbox approves; the token's CVC goes with the first
-- payment only). Env: PAY_KEY (secret key with the payments role), TOKEN (tok_…), TAG.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PAY_KEY")
wrk.body = '{"amount":1000,"currency":"usd","token":"' .. os.getenv("TOKEN") .. '"}'

local counter = 0
-- Keys must differ between runs too (a warm-up and the measured run share TAG): Lua's
-- math.random is unseeded, so the tag takes 8 bytes of /dev/urandom instead.
local function random_hex()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(8)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local thread_tag = (os.getenv("TAG") or "") .. "-" .. random_hex()

request = function()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = thread_tag .. "-pay-" .. counter
  return wrk.format()
end
