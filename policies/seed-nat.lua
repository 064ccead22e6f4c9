-- The LVS-NAT layout from keepalived's LVS-NAT HOWTO (seed section 6.1): the director is the
-- real servers' gateway, so the public VIP and the private gateway address move together
-- in sync group VG1.

lvsd.vrrp "VI_1" {
  interface = "eth0",
  vrid = 51,
  state = "master",
  priority = 150,
  advert_int = 1,
  auth_pass = "example",
  vips = { "192.168.1.11" },
}

lvsd.vrrp "VI_GATEWAY" {
  interface = "eth1",
  vrid = 52,
  state = "master",
  priority = 150,
  advert_int = 1,
  auth_pass = "example",
  vips = { "10.20.40.1" },
}

lvsd.sync_group "VG1" { instances = { "VI_1", "VI_GATEWAY" } }

lvsd.service "ssh" {
  vip = "192.168.1.11:22",
  protocol = "tcp",
  scheduler = "rr",
  forward = "nat",
  -- keepalived's `nat_mask 255.255.255.0` here has no effect on IPVS (it is not the
  -- persistence netmask), so it has no counterpart: the reals' gateway is VI_GATEWAY.
  check = lvsd.check.tcp { port = 22, timeout = 3 },
  reals = { { address = "10.20.40.10:22", weight = 1 } },
}
