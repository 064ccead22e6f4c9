-- Two directors sharing connection state: the sync daemon follows the VRRP instance's
-- starting state (master on lvs01, backup on lvs02). Used by tests/vm/daemon.sh.
local master = lvsd.node == "lvs01"
lvsd.vrrp "VI_1" {
  interface = "eth0", vrid = 51, state = master and "master" or "backup",
  priority = master and 100 or 90, vips = { "192.0.2.100" },
}
lvsd.sync_daemon { interface = "eth0", id = 7, instance = "VI_1" }
-- keepalived's lvs_timeouts (ipvsadm --set): tcpfin left as it is.
lvsd.global { lvs_timeouts = { tcp = 7200, udp = 60 } }
lvsd.service "web" { vip = "192.0.2.100:80", scheduler = "rr", reals = { "192.0.2.21:80" } }
