-- A pair sharing connections over the kernel's sync daemon (master on lvs01, backup on
-- lvs02) in front of one DR real server. Used by tests/vm/sync-doctor.sh. Unicast VRRP:
-- `lvsd doctor` listens for multicast adverts only, so it spends its time on sync messages.
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {
  interface = "eth0", vrid = 52, state = master and "master" or "backup",
  priority = master and 100 or 90, vips = { "192.0.2.100" },
  unicast_peers = { master and "192.0.2.2" or "192.0.2.1" },
}
lvsd.sync_daemon { interface = "eth0", id = 7, instance = "VI_1" }
lvsd.service "echo" { vip = "192.0.2.100:7", scheduler = "rr", reals = { "192.0.2.4:7" } }
