-- Every scheduler the 6.1 kernel has, IPv4 and IPv6, fwmark services, scheduler flags,
-- persistence with netmasks and the sip engine, one-packet scheduling, and dr/nat/tun
-- reals with weights, thresholds and each tunnel type. Used by tests/vm/roundtrip.sh.
local scheds = { "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh" }
for i, s in ipairs(scheds) do
  lvsd.service("s-" .. s) {
    vip = "192.0.2." .. i .. ":80", scheduler = s, forward = "dr",
    reals = {
      { address = "198.51.100." .. i .. ":80", weight = i },
      { address = "198.51.100." .. (i + 100) .. ":8080", forward = "nat", weight = 0,
        upper_threshold = 50 + i, lower_threshold = i },
    },
  }
end

lvsd.service "sh-flags" {
  vip = "203.0.113.2:53", protocol = "udp", scheduler = "sh", sched_flags = { "sh-fallback", "sh-port" },
  ops = true, reals = { "198.51.100.53:53" },
}
lvsd.service "mh-flags" {
  vip = "[2001:db8::1]:53", protocol = "udp", scheduler = "mh", sched_flags = { "mh-port" },
  reals = { { address = "[2001:db8::10]:53", weight = 2 }, { address = "[2001:db8:ffff::1]:5353", forward = "nat" } },
}
lvsd.service "v6-persistent" {
  vip = "[2001:db8::2]:443", scheduler = "wrr", persistence = 30, netmask = 64, forward = "nat",
  reals = { "[2001:db8::20]:443", "[2001:db8::21]:443" },
}
lvsd.service "sip" {
  vip = "203.0.113.3:5060", protocol = "udp", scheduler = "rr", persistence = 60, pe = "sip",
  reals = { "198.51.100.60:5060" },
}
lvsd.service "fwmark-v4" {
  fwmark = 1, scheduler = "wlc", persistence = 300, netmask = "255.255.255.0",
  reals = { "198.51.100.9:0" },
}
lvsd.service "fwmark-v6" {
  fwmark = 2, family = "inet6", scheduler = "lc",
  reals = { "[2001:db8::9]:0" },
}
lvsd.service "tunnels" {
  vip = "203.0.113.1:443", scheduler = "wlc", forward = "tun",
  reals = {
    { address = "198.51.100.200:443", weight = 3 },
    { address = "198.51.100.201:443", weight = 2, tunnel = { type = "gue", port = 6080, csum = "csum" } },
    { address = "198.51.100.202:443", weight = 65535, tunnel = { type = "gue", port = 6081, csum = "remcsum" } },
    { address = "198.51.100.203:443", tunnel = { type = "gre", csum = "csum" } },
  },
}
lvsd.service "sctp" {
  vip = "192.0.2.200:9", protocol = "sctp", scheduler = "rr", reals = { "198.51.100.99:9" },
}
