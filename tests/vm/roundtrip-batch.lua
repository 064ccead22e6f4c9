-- 80 services x 4 reals (400 writes: two datagrams of requests) where two reals have a
-- lower threshold and no upper one: lvsd's policy check lets that through (0 means "no
-- threshold"), the kernel refuses it (ERANGE), so two requests of a batch fail: one inside
-- a datagram, and the very last one (the last service's last real), whose answer is the one
-- that closes its datagram. With `--node refuse-all` every real is refused: a datagram's
-- worth of failures, each of which must be reported. Used by tests/vm/roundtrip.sh.
for i = 1, 80 do
  local reals = {}
  for r = 1, 4 do
    reals[r] = { address = "198.51.100." .. r .. ":" .. (8000 + i), weight = r }
    if lvsd.node == "refuse-all" or (i == 23 and r == 3) or (i == 80 and r == 4) then reals[r].lower_threshold = 5 end
  end
  lvsd.service("b" .. i) { vip = "192.0.2." .. i .. ":" .. (8000 + i), scheduler = "wrr", forward = "dr", reals = reals }
end
