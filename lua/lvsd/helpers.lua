-- lvsd.helpers: small conveniences for policy files.
-- local h = require "lvsd.helpers"
local M = {}

-- A list of "prefix.N:port" addresses for N in first..last, for farms of numbered hosts.
-- h.range("198.51.100.", 10, 13, 80) --> { "198.51.100.10:80", ..., "198.51.100.13:80" }
function M.range(prefix, first, last, port)
  local out = {}
  for n = first, last do
    out[#out + 1] = string.format("%s%d:%d", prefix, n, port)
  end
  return out
end

-- Give every address of a list the same extra settings:
-- reals = h.with(h.range("198.51.100.", 10, 13, 80), { weight = 2 })
function M.with(addresses, settings)
  local out = {}
  for i, a in ipairs(addresses) do
    local r = { address = a }
    for k, v in pairs(settings) do r[k] = v end
    out[i] = r
  end
  return out
end

-- Pick a value by node name, with a default: h.by_node { lvs01 = 100, lvs02 = 90 }
function M.by_node(map, default)
  local v = map[lvsd.node]
  if v == nil then return default end
  return v
end

return M
