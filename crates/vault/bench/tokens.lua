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
-- TAG (set per wrk process by run.sh) keeps keys of concurrent wrk processes apart; keys.lua
-- adds a random part, so runs sharing a TAG (warm-up and measured run) differ too.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local thread_tag = dofile(here .. "keys.lua").thread_tag()
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
