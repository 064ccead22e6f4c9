-- The IPVS benchmark's policy: N services x 4 real servers from a Lua loop (tests/vm/bench.sh
-- rewrites the next line for other sizes). `--node changed` gives one real server of one
-- service another weight.
local N = 10000
for i = 0, N - 1 do
  -- ipvsadm gives DR reals the service's port; so do we, for the same table.
  local port = 1000 + i // 250
  local vip = string.format("192.0.2.%d:%d", i % 250 + 1, port)
  local reals = {}
  for r = 1, 4 do
    local w = (lvsd.node == "changed" and i == N // 2 and r == 1) and 2 or 1
    reals[r] = { address = "198.51.100." .. r .. ":" .. port, weight = w }
  end
  lvsd.service("s" .. i) { vip = vip, scheduler = "wrr", forward = "dr", reals = reals }
end
