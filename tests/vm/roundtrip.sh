# IPv6, fwmark, every scheduler, dr/nat/tun with weights, thresholds and tunnel types:
# what lvsd writes reads back from the kernel as the same table (a second pass writes
# nothing) and ipvsadm shows exactly the plan.
set -e
P="-p tests/vm/roundtrip.lua --node lvs01"
lvsd run $P --once 2>/tmp/once.log > /tmp/once.out || { cat /tmp/once.log; fail "apply failed"; }
cat /tmp/once.out
grep -q ' 0 failed' /tmp/once.out || fail "apply: $(cat /tmp/once.out)"
lvsd plan tests/vm/roundtrip.lua --node lvs01 | sed '/^$/,$d' > /tmp/plan.txt
ipvsadm -L -n | tail -n +2 > /tmp/kernel.txt
same /tmp/plan.txt /tmp/kernel.txt
# Thresholds and tunnel settings are not in -L -n: check them with ipvsadm's own options.
ipvsadm -L -n --thresholds | grep -q '198.51.100.101:8080 *51 *1 ' || { ipvsadm -L -n --thresholds; fail "thresholds"; }
ipvsadm -L -n --tun-info > /tmp/tun.txt
grep -q '198.51.100.201:443 *Tunnel *gue:6080:+c *2 ' /tmp/tun.txt || { cat /tmp/tun.txt; fail "gue tunnel"; }
grep -q '198.51.100.203:443 *Tunnel *gre:+c *1 ' /tmp/tun.txt || { cat /tmp/tun.txt; fail "gre tunnel"; }
lvsd run $P --once 2>/tmp/once.log > /tmp/once.out
grep -q 'ipvs: 0 applied, 0 failed, 0 writes' /tmp/once.out || { cat /tmp/once.log; fail "second pass: $(cat /tmp/once.out)"; }
echo "roundtrip: ok ($(grep -c '^  ->' /tmp/kernel.txt) reals in $(grep -vc '^  ->' /tmp/kernel.txt) services)"
