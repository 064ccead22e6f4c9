-- Health checks driving the kernel table (tests/vm/checks.sh builds the real servers in
-- namespaces and asserts with ipvsadm). Short timings so the scenario stays quick under TCG:
-- a real leaves after fall x interval = 2 s of failures and returns after rise x interval.
-- Documentation addresses only.

-- Check settings shared by every check here, with `extra` keys on top.
local function fast(extra)
  local c = { interval = 1, timeout = 1, retries = 0, fall = 2, rise = 2 }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- rs1: a TCP listener; rs2: an HTTP server (GET /health must answer 200); rs3: a TCP listener,
-- kept at weight 0 while down.
lvsd.service "web" {
  vip = "203.0.113.10:80", scheduler = "wrr", forward = "dr",
  reals = {
    { address = "198.51.100.21:80", weight = 1, check = lvsd.check.tcp(fast()) },
    { address = "198.51.100.22:80", weight = 2, check = lvsd.check.http(fast { path = "/health", status = "200" }) },
    { address = "198.51.100.23:80", weight = 3, check = lvsd.check.tcp(fast()), inhibit_on_failure = true },
  },
}

-- Quorum 3 out of 2 + 2: losing either real puts the sorry server in.
lvsd.service "quorum" {
  vip = "203.0.113.11:80", scheduler = "wrr", forward = "dr",
  check = lvsd.check.tcp(fast()),
  quorum = 3, sorry_server = "198.51.100.99:80",
  reals = {
    { address = "198.51.100.24:80", weight = 2 },
    { address = "198.51.100.25:80", weight = 2 },
  },
}

lvsd.service "dynamic" {
  vip = "203.0.113.12:80", scheduler = "wrr", forward = "dr",
  reals = {
    -- A Lua check: the real's agent on port 7000 answers one line, its weight (or a word
    -- when it wants out).
    {
      address = "198.51.100.26:80",
      check = lvsd.check.lua(fast {
        port = 7000,
        run = function(rs)
          local c = lvsd.net.tcp(rs.ip, rs.port)
          local line = c:read_line()
          c:close()
          local w = tonumber(line)
          if not w then return false, "agent says " .. tostring(line) end
          return { ok = true, weight = w }
        end,
      }),
    },
    -- A weight function over an HTTP check's body ("load N"): weight 100 - N.
    {
      address = "198.51.100.27:80",
      check = lvsd.check.http(fast { path = "/load" }),
      weight = function(rs, h)
        local load = h.ok and tonumber((h.body or ""):match("load (%d+)"))
        if not load then return 0 end
        return 100 - load
      end,
    },
  },
}
