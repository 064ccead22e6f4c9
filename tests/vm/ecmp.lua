-- Scale-out in the VM: two directors behind a BIRD router's ECMP route (tests/vm/ecmp.sh).
local ids = { d1 = "192.0.2.2", d2 = "192.0.2.3" }
local here = "/tmp/" .. lvsd.node
lvsd.bgp {
  socket = here .. "/bird.ctl", include = here .. "/lvsd.conf",
  local_as = 65001, router_id = ids[lvsd.node],
  neighbors = { { address = "192.0.2.1", as = 65000, hold = 9, keepalive = 3 } },
}
lvsd.service "web" {
  vip = "203.0.113.10:80", scheduler = "mh", forward = "dr", announce = true,
  check = lvsd.check.tcp { interval = 0.5, timeout = 1, retries = 0 },
  reals = { "192.0.2.11:80", "192.0.2.12:80" },
}
