-- Failover hooks: Lua functions run in order, in process, on every VRRP transition.
-- ev.instance, ev.from, ev.to, ev.priority, ev.reason

local function announce(ev)
  lvsd.log.warn(string.format("%s: %s -> %s (priority %d, %s)", ev.instance, ev.from, ev.to, ev.priority, ev.reason))
end

lvsd.vrrp "VI_WEB" {
  interface = "eth0", vrid = 71, auth_pass = "s3cret",
  state = lvsd.node == "lvs01" and "master" or "backup",
  priority = lvsd.node == "lvs01" and 100 or 90,
  vips = { "192.0.2.71/24 dev eth0 label eth0:71" },
  on_change = announce,
  -- an external program too, as keepalived's notify_master (argument vector, no shell)
  notify = { master = { "/usr/local/sbin/page-oncall", "director became master" } },
}

lvsd.vrrp "VI_GW" {
  interface = "eth1", vrid = 72, auth_pass = "s3cret",
  priority = lvsd.node == "lvs01" and 100 or 90,
  vips = { "198.51.100.1/24" },
  on_change = announce,
}

-- the public VIP and the real servers' gateway move together
lvsd.sync_group "G_WEB" {
  instances = { "VI_WEB", "VI_GW" },
  on_change = function(ev) lvsd.log.info("group " .. ev.instance .. " is now " .. ev.to) end,
}

lvsd.service "web" {
  vip = "192.0.2.71:80", scheduler = "wlc", forward = "nat",
  check = lvsd.check.http { path = "/healthz", status = "200-299", interval = 5, timeout = 2 },
  reals = { "198.51.100.11:80", "198.51.100.12:80" },
  sorry_server = "198.51.100.99:80",
}
