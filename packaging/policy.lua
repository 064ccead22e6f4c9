-- /etc/lvsd/policy.lua: the policy lvsd.service runs (`lvsd run -p /etc/lvsd/policy.lua`).
--
-- This example is a pair of directors in front of two web servers (LVS-DR): edit the
-- interface, the addresses and the password, check it with `lvsd check /etc/lvsd/policy.lua`,
-- see what it yields with `lvsd plan /etc/lvsd/policy.lua`, then
-- `systemctl enable --now lvsd`. The full reference is lvsd-policy(5); `lvsd import
-- /etc/keepalived/keepalived.conf` translates an existing keepalived configuration.
--
-- One file serves both directors: each one sees its own name in lvsd.node (the host name,
-- or `--node NAME`). Edits are picked up at once when the file is saved; a policy that does
-- not validate is reported and the running one is kept.

-- This director is the preferred master when its host name is "lvs01".
local master = lvsd.node == "lvs01"

-- The VRRP instance that holds the service address (keepalived's vrrp_instance).
lvsd.vrrp "VI_1" {
  interface = "eth0",            -- the link VRRP runs on
  vrid = 51,                     -- 1..255, the same on both directors
  version = 2,                   -- 2: RFC 3768 (IPv4); 3: RFC 5798 (IPv4 and IPv6)
  priority = master and 100 or 90,
  advert_int = 1,                -- seconds between adverts
  auth_pass = "changeme",        -- v2 simple password, at most 8 characters
  vips = { "192.0.2.10/24" },    -- the addresses the master holds
  -- Lua hooks run in order, in process, on every transition:
  on_change = function(ev)
    lvsd.log.warn(ev.instance .. ": " .. ev.from .. " -> " .. ev.to .. " (" .. ev.reason .. ")")
  end,
}

-- The virtual server and its real servers (keepalived's virtual_server).
lvsd.service "web" {
  vip = "192.0.2.10:80",
  protocol = "tcp",
  scheduler = "wlc",             -- rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos
  forward = "dr",                -- direct routing: the reals hold the VIP on lo
                                 -- (lvsd-realserver.service does that on each of them)
  -- A real is taken out after a failed check (each try bounded by the timeout) and put
  -- back after a successful one.
  check = lvsd.check.http { path = "/", status = "200-399", interval = 5, timeout = 3, retries = 2 },
  reals = {
    "198.51.100.11:80",
    { address = "198.51.100.12:80", weight = 2 },
  },
}
