-- Shared by the wrk scripts of this directory (loaded with dofile from the script's own
-- directory): a per-process random tag for Idempotency-Keys.
-- Keys must differ between runs too (a warm-up and the measured run share TAG): Lua's
-- math.random is unseeded, so the tag takes 8 bytes of /dev/urandom instead.
local M = {}

function M.random_hex()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(8)
  f:close()
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- TAG (from the environment) then a random part: "<TAG>-<16 hex digits>".
function M.thread_tag()
  return (os.getenv("TAG") or "") .. "-" .. M.random_hex()
end

return M
