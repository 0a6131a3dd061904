-- wrk script for scripts/reliability/soak.sh: POST /v1/tokens (publishable key, allowed origin),
-- each connection waiting DELAY_MS before its next request, so the rate is about
-- connections * 1000 / (DELAY_MS + latency). Env: PK, ORIGIN, DELAY_MS (0: as fast as possible).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PK")
wrk.headers["Origin"] = os.getenv("ORIGIN")
wrk.body = '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}'

local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  delay = function()
    return delay_ms
  end
end
