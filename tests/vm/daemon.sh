# Sync daemons: two director namespaces joined by a veth pair; lvsd starts the master
# daemon on one and the backup daemon on the other, ipvsadm sees them, a second pass does
# nothing, and a role switch stops one daemon and starts the other. The connection
# timeouts (lvs_timeouts) are set once, tcpfin left at the kernel's 120.
set -e
ip netns add d1
ip netns add d2
ip link add eth0 netns d1 type veth peer name eth0 netns d2
for n in 1 2; do
    ip netns exec d$n ip link set lo up
    ip netns exec d$n ip link set eth0 up
    ip netns exec d$n ip addr add 192.0.2.$n/24 dev eth0
done
trap 'ip netns del d1; ip netns del d2' EXIT
P="-p tests/vm/daemon.lua"
ip netns exec d1 lvsd run $P --node lvs01 --once > /tmp/d1.out 2>/tmp/d1.log || { cat /tmp/d1.log; fail "d1"; }
ip netns exec d2 lvsd run $P --node lvs02 --once > /tmp/d2.out 2>/tmp/d2.log || { cat /tmp/d2.log; fail "d2"; }
ip netns exec d1 ipvsadm -L --daemon > /tmp/d1.txt
ip netns exec d2 ipvsadm -L --daemon > /tmp/d2.txt
cat /tmp/d1.txt /tmp/d2.txt
grep -q 'master sync daemon (mcast=eth0, syncid=7,' /tmp/d1.txt || fail "no master daemon on d1"
grep -q 'backup sync daemon (mcast=eth0, syncid=7,' /tmp/d2.txt || fail "no backup daemon on d2"
[ "$(wc -l < /tmp/d1.txt)" = 1 ] || fail "d1 runs more than one daemon"
ip netns exec d1 ipvsadm -L --timeout | tee /tmp/d1.txt
grep -q 'Timeout (tcp tcpfin udp): 7200 120 60' /tmp/d1.txt || fail "lvs_timeouts not set on d1"
# Nothing to do the second time.
ip netns exec d1 lvsd run $P --node lvs01 --once > /tmp/d1.out 2>/tmp/d1.log
grep -q 'ipvs: 0 applied, 0 failed, 0 writes' /tmp/d1.out || fail "second pass: $(cat /tmp/d1.out)"
# d1 becomes backup (what a VRRP transition will do): master stopped, backup started.
ip netns exec d1 lvsd run $P --node lvs02 --once > /tmp/d1.out 2>/tmp/d1.log
grep -q 'ipvs: 0 applied, 0 failed, 2 writes' /tmp/d1.out || fail "switch: $(cat /tmp/d1.out)"
ip netns exec d1 ipvsadm -L --daemon > /tmp/d1.txt
cat /tmp/d1.txt
grep -q 'backup sync daemon (mcast=eth0, syncid=7,' /tmp/d1.txt || fail "d1 did not switch to backup"
grep -q master /tmp/d1.txt && fail "d1 still runs a master daemon"
echo "daemon: ok"
