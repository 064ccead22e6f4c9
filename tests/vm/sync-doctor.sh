# `lvsd doctor` hears the peer's sync messages on a real kernel: two directors (d1 master,
# d2 backup, daemons started by lvsd from sync-doctor.lua), a client and a DR real on a
# bridge; the client's TCP connection through d1 is synced to d2. doctor on d2 listens beside
# the kernel's backup daemon (whose socket allows address reuse) and reports the master's sync
# id as ours; with a policy of another id it fails; on d1 (the pair's master) it does not
# listen; with no traffic it warns.
set -e
ip link add br0 type bridge
ip link set br0 up
n=0
for h in d1 d2 c r; do
    n=$((n + 1))
    ip netns add $h
    ip link add eth0 netns $h type veth peer name p$h
    ip link set p$h master br0
    ip link set p$h up
    ip netns exec $h ip link set lo up
    ip netns exec $h ip link set eth0 up
    ip netns exec $h ip addr add 192.0.2.$n/24 dev eth0
done
rm -f /tmp/stop /tmp/*.pid
stop_traffic() {
    touch /tmp/stop
    for p in /tmp/*.pid; do
        if [ -f "$p" ]; then kill "$(cat "$p")" 2>/dev/null || true; fi
    done
    rm -f /tmp/*.pid
    true
}
trap 'stop_traffic; for h in d1 d2 c r; do ip netns del $h; done' EXIT
# The DR real: the VIP on lo, not answered for on eth0; an echo server.
ip netns exec r ip addr add 192.0.2.100/32 dev lo
ip netns exec r sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce'
ip netns exec r sh -c 'busybox nc -l -p 7 -e /bin/cat & echo $! > /tmp/real.pid' > /tmp/real.log 2>&1
P="-p tests/vm/sync-doctor.lua"
ip netns exec d1 lvsd run $P --node lvs01 --once > /tmp/d1.out 2>&1 || { cat /tmp/d1.out; fail "lvsd run on d1"; }
ip netns exec d2 lvsd run $P --node lvs02 --once > /tmp/d2.out 2>&1 || { cat /tmp/d2.out; fail "lvsd run on d2"; }
ip netns exec d1 ip addr add 192.0.2.100/32 dev eth0
ip netns exec d1 ipvsadm -L --daemon
ip netns exec d2 ipvsadm -L --daemon
# Sync every other packet of a connection (default: the 3rd, then every 50th).
ip netns exec d1 sh -c 'echo "1 2" > /proc/sys/net/ipv4/vs/sync_threshold'
# One TCP connection, a line every 50 ms, for at most 60 s (or until /tmp/stop).
ip netns exec c sh -c '
    i=0; while [ $i -lt 1200 ] && [ ! -f /tmp/stop ]; do echo x; sleep 0.05; i=$((i + 1)); done |
        busybox nc 192.0.2.100 7 & echo $! > /tmp/client.pid' > /tmp/client.log 2>&1
i=0
until ip netns exec d2 ipvsadm -L -n -c | grep -q '192.0.2.100:7'; do
    i=$((i + 1))
    if [ $i -ge 20 ]; then
        ip netns exec d1 ipvsadm -L -n --stats; ip netns exec d1 ipvsadm -L -n -c; cat /tmp/client.log /tmp/real.log
        fail "the connection never reached d2's table"
    fi
    sleep 0.5
done
ip netns exec d2 ipvsadm -L -n -c
D="lvsd doctor --listen 3 --control /nonexistent.sock"
ip netns exec d2 $D $P --node lvs02 > /tmp/doc2.txt 2>&1 || true
cat /tmp/doc2.txt
grep -q '^PASS  sync *sync messages from 192.0.2.1 with syncid 7 (ours)' /tmp/doc2.txt || fail "d2: no PASS for the master's messages"
sed 's/id = 7/id = 9/' tests/vm/sync-doctor.lua > /tmp/id9.lua
ip netns exec d2 $D -p /tmp/id9.lua --node lvs02 > /tmp/doc9.txt 2>&1 || true
cat /tmp/doc9.txt
grep -q '^FAIL  sync *sync messages from 192.0.2.1 with syncid 7, ours is 9' /tmp/doc9.txt || fail "d2 with id 9: no FAIL"
ip netns exec d1 $D $P --node lvs01 > /tmp/doc1.txt 2>&1 || true
cat /tmp/doc1.txt
grep -q '^INFO  sync *the peer.s sync messages not listened for' /tmp/doc1.txt || fail "d1: no INFO"
stop_traffic
# The master sends what it holds within 2 s.
sleep 3
ip netns exec d2 $D $P --node lvs02 > /tmp/doc0.txt 2>&1 || true
cat /tmp/doc0.txt
grep -q '^WARN  sync *no sync message from another director' /tmp/doc0.txt || fail "d2 without traffic: no WARN"
echo "sync-doctor: ok"
