-- A DR service in front of two busybox httpd real servers (tests/vm/adopt.sh builds the
-- namespaces). Documentation addresses only.
lvsd.service "web" {
  vip = "192.0.2.100:80", scheduler = "rr", forward = "dr",
  reals = { "192.0.2.21:80", "192.0.2.22:80" },
}
