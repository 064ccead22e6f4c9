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
# What IPVS's sockopt interface does not show (lvsd then reads that service by netlink): a
# real of the other family (IPv6 by tunnel in an IPv4 service) and a tunnel's settings.
ipvsadm -a -t 192.0.2.1:80 -r [2001:db8::99]:80 -i
ipvsadm -e -t 203.0.113.1:443 -r 198.51.100.201:443 -i -w 2 --tun-type gue --tun-port 7000 --tun-csum
lvsd run $P --once 2>/tmp/once.log > /tmp/once.out
grep -q 'ipvs: 2 applied, 0 failed, 2 writes' /tmp/once.out || { cat /tmp/once.log; fail "hidden changes: $(cat /tmp/once.out)"; }
ipvsadm -L -n | tail -n +2 > /tmp/kernel.txt
same /tmp/plan.txt /tmp/kernel.txt
ipvsadm -L -n --tun-info | grep -q '198.51.100.201:443 *Tunnel *gue:6080:+c *2 ' || { ipvsadm -L -n --tun-info; fail "gue port not restored"; }
echo "roundtrip: ok ($(grep -c '^  ->' /tmp/kernel.txt) reals in $(grep -vc '^  ->' /tmp/kernel.txt) services)"

# A batch with failing requests: requests go many to a datagram; a write is answered only
# when it fails, or when it is the datagram's last. Each one the kernel refuses is reported
# with its own error, every other one is applied.
ip netns add batch
trap 'ip netns del batch' EXIT
ip netns exec batch ip link set lo up
B="-p tests/vm/roundtrip-batch.lua --node lvs01"
rc=0
ip netns exec batch lvsd run $B --once 2>/tmp/batch.log > /tmp/batch.out || rc=$?
cat /tmp/batch.out
[ $rc -ne 0 ] || fail "batch: a failed request must fail the pass"
grep -q 'ipvs: 398 applied, 2 failed, 400 writes' /tmp/batch.out || { cat /tmp/batch.log; fail "batch: $(cat /tmp/batch.out)"; }
grep 'failed' /tmp/batch.log | grep -v 'ipvs sync done' > /tmp/batch.err || true
[ "$(wc -l < /tmp/batch.err)" = 2 ] || { cat /tmp/batch.log; fail "batch: expected exactly two failed ops"; }
for r in '198.51.100.3:8023 to TCP  192.0.2.23:8023 weight 3' '198.51.100.4:8080 to TCP  192.0.2.80:8080 weight 4'; do
    grep "add real $r" /tmp/batch.err | grep -q 'os error 34' || { cat /tmp/batch.err; fail "batch: $r not refused with the kernel's ERANGE"; }
done
ip netns exec batch ipvsadm -S -n > /tmp/batch.txt
[ "$(grep -c '^-A' /tmp/batch.txt)" = 80 ] || fail "batch: services missing"
[ "$(grep -c '^-a' /tmp/batch.txt)" = 318 ] || { cat /tmp/batch.txt; fail "batch: reals missing"; }
grep -Eq '198.51.100.3:8023|198.51.100.4:8080' /tmp/batch.txt && fail "batch: a refused real is in the table"
# The next pass tries the two refused reals again, in one datagram, and meets the same errors.
ip netns exec batch lvsd run $B --once 2>/tmp/batch.log > /tmp/batch.out || true
grep -q 'ipvs: 0 applied, 2 failed, 2 writes' /tmp/batch.out || { cat /tmp/batch.log; fail "batch, second pass: $(cat /tmp/batch.out)"; }
# Every real refused: 320 failures, 204 of them in the first datagram (51 services and their
# reals, then the next service), each answered and reported (none lost to a full receive
# buffer, none "outcome unknown"). The log lists the first 100 failures and counts the rest,
# which it lists at debug level.
ip netns exec batch ipvsadm -C
LVSD_LOG=info,ipvs=debug ip netns exec batch lvsd run -p tests/vm/roundtrip-batch.lua --node refuse-all --once 2>/tmp/batch.log > /tmp/batch.out || true
grep -q 'ipvs: 80 applied, 320 failed, 400 writes' /tmp/batch.out || { cat /tmp/batch.log; fail "batch, every real refused: $(cat /tmp/batch.out)"; }
[ "$(grep 'add real' /tmp/batch.log | grep -c 'os error 34')" = 320 ] || { cat /tmp/batch.log; fail "batch: not 320 ERANGE errors"; }
[ "$(grep 'ERROR' /tmp/batch.log | grep 'add real' | grep -c 'os error 34')" = 100 ] || { cat /tmp/batch.log; fail "batch: not 100 failures at error level"; }
grep -q 'and 220 more failed writes' /tmp/batch.log || { cat /tmp/batch.log; fail "batch: the other 220 failures are not counted"; }
grep -q 'unknown' /tmp/batch.log && { cat /tmp/batch.log; fail "batch: an outcome went unknown"; }
echo "roundtrip: batch with two refused requests ok; every real refused ok"
