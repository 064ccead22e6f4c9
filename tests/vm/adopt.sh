# Restart adoption: with traffic flowing through a DR service, running lvsd again changes
# nothing: no writes, counters and connections kept. The table is first made by ipvsadm (as
# keepalived would have left it), then adopted by lvsd, then lvsd runs again.
set -e
VIP=192.0.2.100
ip link add br0 type bridge
ip link set br0 up
ip addr add 192.0.2.1/24 dev br0
ip addr add $VIP/32 dev br0
n=0
for h in cl:192.0.2.10 rs1:192.0.2.21 rs2:192.0.2.22; do
    name=${h%%:*}; addr=${h#*:}
    n=$((n+1))
    ip netns add $name
    ip link add v$n type veth peer name eth0 netns $name
    ip link set v$n master br0 up
    ip netns exec $name ip link set lo up
    ip netns exec $name ip link set eth0 up
    ip netns exec $name ip addr add $addr/24 dev eth0
done
for rs in rs1 rs2; do
    # The real-server side of DR: the VIP on lo, never answered for in ARP.
    ip netns exec $rs sh -c "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce"
    ip netns exec $rs ip addr add $VIP/32 dev lo
    mkdir -p /tmp/www-$rs
    echo "hello from $rs" > /tmp/www-$rs/index.html
    ip netns exec $rs busybox httpd -p 80 -h /tmp/www-$rs
done
cleanup() {
    for ns in cl rs1 rs2; do ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del $ns 2>/dev/null; done
}
trap cleanup EXIT

# The table as another tool left it.
ipvsadm -A -t $VIP:80 -s rr
ipvsadm -a -t $VIP:80 -r 192.0.2.21:80 -g -w 1
ipvsadm -a -t $VIP:80 -r 192.0.2.22:80 -g -w 1

requests() {
    ok=0
    for i in $(seq 1 $1); do
        if printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec cl busybox nc -w 3 $VIP 80 | grep -q 'hello from'; then ok=$((ok+1)); fi
    done
    echo $ok
}
got=$(requests 10)
[ "$got" = 10 ] || fail "only $got of 10 requests answered through the DR service"
# A connection that stays open while lvsd runs (bounded: 60 s at most).
(sleep 60 | ip netns exec cl busybox nc $VIP 80 >/dev/null 2>&1) &
sleep 1
conns() { ipvsadm -L -n --stats | awk '/^TCP/{print $3}'; }
active() { ipvsadm -L -n | awk '/->.*Route/{a+=$4} END{print a}'; }
before_conns=$(conns)
before_active=$(active)
[ "$before_active" -ge 1 ] || fail "the long connection is not active"

P="-p tests/vm/adopt.lua --node lvs01"
lvsd run $P --once > /tmp/once.out 2>/tmp/once.log || { cat /tmp/once.log; fail "adopt pass"; }
grep -q 'ipvs: 0 applied, 0 failed, 0 writes, 0 foreign' /tmp/once.out || fail "adoption wrote: $(cat /tmp/once.out)"
[ "$(conns)" -ge "$before_conns" ] || fail "counters reset: $before_conns -> $(conns)"
[ "$(active)" = "$before_active" ] || fail "active connections changed: $before_active -> $(active)"

got=$(requests 6)
[ "$got" = 6 ] || fail "after adoption only $got of 6 requests answered"
mid_conns=$(conns)
lvsd run $P --once > /tmp/once.out 2>/tmp/once.log
grep -q 'ipvs: 0 applied, 0 failed, 0 writes' /tmp/once.out || fail "restart wrote: $(cat /tmp/once.out)"
[ "$(conns)" -ge "$mid_conns" ] || fail "counters reset on restart"
[ "$(active)" = "$before_active" ] || fail "active connections changed on restart"
# The kernel refreshes the counters it reports every 2 s (its rate estimator): two reads can
# straddle a refresh, so the two tools are compared on reads with no refresh between them.
for try in 1 2 3 4 5; do
    ipvsadm -L -n --stats > /tmp/a0.txt
    lvsd status --kernel --stats > /tmp/b.txt
    ipvsadm -L -n --stats > /tmp/a.txt
    cmp -s /tmp/a0.txt /tmp/a.txt && break
done
same /tmp/a.txt /tmp/b.txt
echo "adopt: ok (conns $before_conns -> $mid_conns -> $(conns), active $before_active)"
cat /tmp/a.txt
