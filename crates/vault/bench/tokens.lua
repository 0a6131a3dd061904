-- wrk script: POST /v1/tokens with a publishable key from an allowed origin.
-- Env: PK (publishable key), ORIGIN (allowed origin), IDEMPOTENCY=1 to send a unique
-- Idempotency-Key per request, RECORD=path to append the id of every 201-answered token.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PK")
wrk.headers["Origin"] = os.getenv("ORIGIN") or "https://shop.example"
wrk.body = '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}'

local idempotency = os.getenv("IDEMPOTENCY") == "1"
local record_path = os.getenv("RECORD")
local counter = 0
-- TAG (set per wrk process by run.sh) keeps keys of concurrent wrk processes apart: the Lua
-- random generator is not seeded per process.
-- Keys must differ between runs too (a warm-up and the measured run share TAG): Lua's
-- math.random is unseeded, so the tag takes 8 bytes of /dev/urandom instead.
local function random_hex()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(8)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local thread_tag = (os.getenv("TAG") or "") .. "-" .. random_hex()
local out = nil

if idempotency then
  request = function()
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = thread_tag .. "-" .. counter
    return wrk.format()
  end
end

if record_path then
  response = function(status, headers, body)
    if status == 201 then
      if out == nil then
        out = io.open(record_path, "a")
        out:setvbuf("line")
      end
      local id = string.match(body, '"id":"(tok_[A-Za-z0-9]+)"')
      if id then out:write(id, "\n") end
    end
  end
end
