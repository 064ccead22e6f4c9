-- A custom health check written in Lua: Redis must answer PING with +PONG.
-- The function runs as a coroutine inside lvsd; lvsd.net calls yield to the runtime, so a
-- slow server never blocks other checks. Instruction/memory limits and `timeout` apply.

local redis_ping = lvsd.check.lua {
  interval = 2, timeout = 1, fall = 3, rise = 2,
  run = function(rs)
    local c = lvsd.net.tcp(rs.ip, rs.port)
    c:write("PING\r\n")
    return c:read_line() == "+PONG"
  end,
}

lvsd.vrrp "VI_CACHE" {
  interface = "eth0", vrid = 61, version = 3, advert_int = 0.5,
  priority = lvsd.node == "lvs01" and 110 or 100,
  vips = { "192.0.2.61" },
}

lvsd.service "redis" {
  vip = "192.0.2.61:6379", scheduler = "lc", forward = "dr",
  check = redis_ping,
  -- a dynamic weight: slower replicas get less traffic
  reals = {
    { address = "198.51.100.21:6379", weight = function(rs, h) return h.ok and math.max(1, 100 - h.latency_ms) or 0 end },
    { address = "198.51.100.22:6379", weight = function(rs, h) return h.ok and math.max(1, 100 - h.latency_ms) or 0 end },
  },
}
