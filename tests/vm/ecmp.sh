# Scale-out: a router running BIRD peers with two directors (each its own BIRD and lvsd with
# the kernel's IPVS, mh, DR); the router's ECMP route has both; requests from a client behind
# the router are answered by the reals through either director; drain-director takes one
# director out of the route and the requests still succeed; undrain brings it back; SIGTERM
# withdraws before lvsd stops. Needs BIRD in the guest:
#   scripts/vm --extra /usr/sbin/bird --extra /usr/sbin/birdc ecmp
# (no BFD and a 9 s hold time here: TCG on a busy host can stall BIRD for a second).
set -e
VIP=203.0.113.10
ip link add br0 type bridge
ip link set br0 up
n=0
add() { # name addr: a namespace on br0 with eth0 = addr/24
    n=$((n+1))
    ip netns add $1
    ip link add v$n type veth peer name eth0 netns $1
    ip link set v$n master br0 up
    ip netns exec $1 ip link set lo up
    ip netns exec $1 ip link set eth0 up
    ip netns exec $1 ip addr add $2/24 dev eth0
}
add rt 192.0.2.1
add d1 192.0.2.2
add d2 192.0.2.3
add r1 192.0.2.11
add r2 192.0.2.12
ip netns add cl
ip link add eth1 netns rt type veth peer name eth0 netns cl
ip netns exec cl ip link set lo up
ip netns exec cl ip link set eth0 up
ip netns exec cl ip addr add 198.51.100.2/24 dev eth0
ip netns exec cl ip route add default via 198.51.100.1
ip netns exec rt ip link set eth1 up
ip netns exec rt ip addr add 198.51.100.1/24 dev eth1
ip netns exec rt sh -c "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv4/fib_multipath_hash_policy"
cleanup() {
    for ns in rt d1 d2 r1 r2 cl; do ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null; done
    sleep 0.5
    for ns in rt d1 d2 r1 r2 cl; do ip netns del $ns 2>/dev/null; done
}
trap cleanup EXIT
# The VIP on lo, never answered for in ARP: on the reals (DR) and on the directors (IPVS
# takes the packets addressed to a local address).
for ns in d1 d2 r1 r2; do
    ip netns exec $ns sh -c "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce"
    ip netns exec $ns ip addr add $VIP/32 dev lo
done
for rs in r1 r2; do
    ip netns exec $rs ip route add default via 192.0.2.1
    mkdir -p /tmp/www-$rs
    echo "hello from $rs" > /tmp/www-$rs/index.html
    ip netns exec $rs busybox httpd -p 80 -h /tmp/www-$rs
done
cat > /tmp/rt.conf <<RT
log "/tmp/rt.log" all;
router id 192.0.2.1;
protocol device { scan time 1; }
protocol kernel { merge paths on; ipv4 { import none; export all; }; }

protocol bgp d1 { local as 65000; neighbor 192.0.2.2 as 65001; connect delay time 1; error wait time 1, 2; ipv4 { import all; export none; }; }
protocol bgp d2 { local as 65000; neighbor 192.0.2.3 as 65001; connect delay time 1; error wait time 1, 2; ipv4 { import all; export none; }; }
RT
ip netns exec rt bird -c /tmp/rt.conf -s /tmp/rt.ctl -P /tmp/rt.pid || fail "the router's BIRD did not start"
for d in d1 d2; do
    mkdir -p /tmp/$d
    # ip.real: lib.sh's ip() is a function, and $! of a function run in the background is a subshell.
    /sbin/ip.real netns exec $d lvsd run -p tests/vm/ecmp.lua --node $d --control /tmp/$d/ctl/lvsd.sock 2>/tmp/$d.log &
    echo $! > /tmp/$d.lvsd.pid
done
# lvsd writes BIRD's include file; then each director's BIRD starts.
for i in $(seq 1 600); do
    [ -f /tmp/d1/lvsd.conf ] && [ -f /tmp/d2/lvsd.conf ] && break
    kill -0 $(cat /tmp/d1.lvsd.pid) $(cat /tmp/d2.lvsd.pid) 2>/dev/null || break
    sleep 0.1
done
[ -f /tmp/d1/lvsd.conf ] && [ -f /tmp/d2/lvsd.conf ] || { cat /tmp/d1.log /tmp/d2.log; fail "lvsd wrote no include file"; }
for d in d1 d2; do
    printf 'log "/tmp/%s/bird.log" all;\nprotocol device { scan time 1; }\ninclude "/tmp/%s/lvsd.conf";\n' $d $d > /tmp/$d/bird.conf
    ip netns exec $d bird -c /tmp/$d/bird.conf -s /tmp/$d/bird.ctl -P /tmp/$d/bird.pid || fail "$d's BIRD did not start"
done
hops() { ip netns exec rt ip route show $VIP/32 | grep -o 'via [0-9.]*' | sort | tr '\n' ' '; }
wait_hops() { # want what
    for i in $(seq 1 300); do [ "$(hops)" = "$1" ] && return 0; sleep 0.1; done
    ip netns exec rt birdc -s /tmp/rt.ctl show protocols; cat /tmp/d1.log /tmp/d2.log
    fail "$2: next hops '$(hops)', want '$1'"
}
wait_hops "via 192.0.2.2 via 192.0.2.3 " "both directors announcing"
ip netns exec rt ip route show $VIP/32
requests() {
    ok=0
    for i in $(seq 1 $1); do
        if printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec cl busybox nc -w 3 $VIP 80 | grep -q 'hello from'; then ok=$((ok+1)); fi
    done
    echo $ok
}
# The reals up in both directors' tables first.
for i in $(seq 1 100); do
    [ "$(ip netns exec d1 ipvsadm -L -n | grep -c Route)" = 2 ] && [ "$(ip netns exec d2 ipvsadm -L -n | grep -c Route)" = 2 ] && break
    sleep 0.1
done
ip netns exec d1 ipvsadm -L -n
got=$(requests 20)
[ "$got" = 20 ] || fail "only $got of 20 requests answered through the ECMP route"
c1=$(ip netns exec d1 ipvsadm -L -n --stats | awk '/^TCP/{print $3}')
c2=$(ip netns exec d2 ipvsadm -L -n --stats | awk '/^TCP/{print $3}')
echo "baseline: 20 of 20 answered; connections d1 $c1, d2 $c2"

lvsd drain-director --timeout 10 --control /tmp/d1/ctl/lvsd.sock || fail "drain-director"
wait_hops "via 192.0.2.3 " "d1 drained"
b1=$(ip netns exec d1 ipvsadm -L -n --stats | awk '/^TCP/{print $3}')
got=$(requests 20)
[ "$got" = 20 ] || fail "only $got of 20 requests answered with d1 drained"
sleep 3 # the kernel refreshes the counters it reports every 2 s
a1=$(ip netns exec d1 ipvsadm -L -n --stats | awk '/^TCP/{print $3}')
[ "$a1" = "$b1" ] || fail "d1 drained but took $((a1 - b1)) new connections"
echo "d1 drained: 20 of 20 answered, none through d1"
lvsd undrain-director --control /tmp/d1/ctl/lvsd.sock >/dev/null || fail "undrain-director"
wait_hops "via 192.0.2.2 via 192.0.2.3 " "d1 undrained"

# SIGTERM: d2 withdraws before it stops; everything goes through d1.
kill $(cat /tmp/d2.lvsd.pid)
wait_hops "via 192.0.2.2 " "d2 stopped"
got=$(requests 20)
[ "$got" = 20 ] || fail "only $got of 20 requests answered with d2 stopped"
kill $(cat /tmp/d1.lvsd.pid)
for f in /tmp/rt.pid /tmp/d1/bird.pid /tmp/d2/bird.pid; do kill $(cat $f) 2>/dev/null || true; done
echo "ecmp: ok"
