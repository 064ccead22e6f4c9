# The seed DR policy applied with --once: ipvsadm shows exactly the planned table, status
# --kernel is byte-identical to ipvsadm, drift is repaired, a no-change pass writes nothing.
set -e
P="-p policies/seed-dr.lua --node lvs01"
once() { lvsd run $P --once 2>/tmp/once.log | tee /tmp/once.out; }

once
grep -q 'ipvs: 3 applied, 0 failed, 3 writes' /tmp/once.out || fail "first pass: $(cat /tmp/once.out)"

# ipvsadm shows exactly the planned table (the plan prints the table, a blank line, VRRP).
lvsd plan policies/seed-dr.lua --node lvs01 | sed '/^$/,$d' > /tmp/plan.txt
ipvsadm -L -n | tail -n +2 > /tmp/kernel.txt
same /tmp/plan.txt /tmp/kernel.txt
for opt in "" --stats --rate; do
    ipvsadm -L -n $opt > /tmp/a.txt
    lvsd status --kernel $opt > /tmp/b.txt
    same /tmp/a.txt /tmp/b.txt
done
ipvsadm -L -n > /tmp/good.txt

# No change: zero writes.
once
grep -q 'ipvs: 0 applied, 0 failed, 0 writes' /tmp/once.out || fail "no-change pass: $(cat /tmp/once.out)"

# Drift by hand: a real deleted, a weight edited, the service's scheduler changed.
ipvsadm -d -t 192.168.65.123:80 -r 192.168.65.156:80
ipvsadm -e -t 192.168.65.123:80 -r 192.168.65.157:80 -g -w 9
ipvsadm -E -t 192.168.65.123:80 -s rr -p 50
once
grep -q 'ipvs: 3 applied, 0 failed, 3 writes' /tmp/once.out || fail "repair pass: $(cat /tmp/once.out)"
ipvsadm -L -n > /tmp/now.txt
same /tmp/good.txt /tmp/now.txt
once
grep -q 'ipvs: 0 applied, 0 failed, 0 writes' /tmp/once.out || fail "after repair: $(cat /tmp/once.out)"

# A service lvsd does not own is kept (default foreign = "keep") with a warning.
ipvsadm -A -t 192.0.2.99:80 -s rr
once
grep -q 'ipvs: 0 applied, 0 failed, 0 writes, 1 foreign' /tmp/once.out || fail "foreign: $(cat /tmp/once.out)"
grep -q 'not in the policy; kept' /tmp/once.log || fail "no foreign warning"
ipvsadm -L -n | grep -q '192.0.2.99:80' || fail "foreign service removed"
echo "seed: ok"
