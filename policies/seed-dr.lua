-- The classic LVS-DR director pair (seed sections 6.2 / 6.3) in one file for both directors.
-- keepalived needed two copies of this, differing in router_id, state and priority;
-- here the node name decides.
--
--   lvsd plan policies/seed-dr.lua --node lvs01   # MASTER, priority 100
--   lvsd plan policies/seed-dr.lua --node lvs02   # BACKUP, priority 90

local master = lvsd.node == "lvs01"

lvsd.global {
  router_id = master and "LVS_01" or "LVS_02",
}

lvsd.vrrp "VI_1" {
  interface = "eth0",
  vrid = 51,
  state = master and "master" or "backup",
  priority = master and 100 or 90,
  advert_int = 1,
  auth_pass = "1111",
  vips = { "192.168.65.123" },
}

lvsd.service "web" {
  vip = "192.168.65.123:80",
  protocol = "tcp",
  scheduler = "wrr",
  forward = "dr",
  persistence = 50,
  -- keepalived: delay_loop 6, TCP_CHECK { connect_timeout 8, retry 3, delay_before_retry 3, connect_port 80 }
  check = lvsd.check.tcp { interval = 6, timeout = 8, retries = 3, retry_delay = 3, port = 80 },
  reals = {
    { address = "192.168.65.156:80", weight = 1 },
    { address = "192.168.65.157:80", weight = 1 },
  },
}
