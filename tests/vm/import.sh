# `lvsd import` against keepalived itself: for each keepalived fixture, keepalived 2.2.7
# (Debian's, checker only) builds its IPVS table, then lvsd builds one from the imported
# policy with --once; `ipvsadm -L -n` must print the same table for both. The real servers
# the checks probe are local addresses with a listener, so keepalived keeps them all up.
# The fixtures: the seed's pair and NAT HOWTO, the importer's keyword files, samples/
# (the forms of keepalived's doc/samples: virtual_server_group, fwmark, IPv6, sorry_server,
# quorum, inhibit_on_failure, tunnelling, one service in two blocks) and fidelity/group-families (address families in a
# virtual_server_group: what keepalived ignores, skips and keeps). Then fidelity/ping-check
# runs: keepalived's PING_CHECK and the imported ping check must take out the same real.
set -e
F=tests/fixtures/keepalived
command -v keepalived >/dev/null || fail "keepalived is not in the initramfs (scripts/vm copies the host's)"

# The imported DR and NAT policies start the IPVS sync daemon on eth0 (the fixtures'
# 1.x-spelt lvs_sync_daemon_inteface, which keepalived 2.2 ignores): give it one.
ip link add eth0 type dummy
ip link set eth0 up
ip link add eth1 type dummy
ip link set eth1 up
mkdir -p /tmp/www
echo ok > /tmp/www/index.html
REALS="198.51.100.156:80 198.51.100.157:80 192.0.2.10:22 192.0.2.20:8080"
for a in $REALS; do
    ip addr add ${a%:*}/32 dev lo
done
# Every real answers before keepalived starts (a check that fails its first try removes the
# real from keepalived's table): start a server where none answers, wait up to 10 s.
answers() { printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 2 ${1%:*} ${1##*:} 2>/dev/null | grep -q ' 200 '; }
serve() {
    for a in $REALS; do
        answers $a && continue
        echo "starting the web server on $a"
        busybox httpd -p $a -h /tmp/www
        n=0
        until answers $a; do
            n=$((n+1))
            [ $n -lt 100 ] || fail "the web server on $a does not answer"
            sleep 0.1
        done
    done
}

clean() {
    ipvsadm -C
    ipvsadm --stop-daemon master 2>/dev/null || true
    ipvsadm --stop-daemon backup 2>/dev/null || true
}

CONFIGS="dr-master dr-backup lvs-nat-howto normalized defaults
    samples/group samples/fwmark samples/ipv6 samples/sorry samples/quorum samples/inhibit samples/tunnel
    samples/duplicate fidelity/group-families"
count=0
for c in $CONFIGS; do
    f=$(echo $c | tr / -)
    clean
    serve
    keepalived --dont-fork --log-console --check -f $F/$c.conf \
        -p /tmp/ka.pid -c /tmp/kc.pid -r /tmp/kv.pid > /tmp/ka-$f.log 2>&1 &
    kpid=$!
    n=0
    until [ -n "$(ipvsadm -L -n | tail -n +4)" ]; do
        n=$((n+1))
        [ $n -lt 300 ] || { cat /tmp/ka-$f.log; fail "$f: keepalived built no IPVS table in 30 s"; }
        sleep 0.1
    done
    # Take keepalived's table once it has settled, before a failing check can remove a real:
    # with `defaults` keepalived's HTTP_GET of its UDP service fails ("HTTP_CHECK on service
    # [192.0.2.20]:udp:8080 failed after 1 retries") and, with HTTP_GET's 3 s between
    # retries, removes the real about 3 s after start; a 3 s wait here raced with that.
    sleep 1
    ipvsadm -L -n > /tmp/keepalived-$f.txt
    kill $kpid
    wait $kpid || true
    clean

    lvsd import $F/$c.conf -o /tmp/$f.lua 2> /tmp/import-$f.log || { cat /tmp/import-$f.log; fail "$f: import"; }
    lvsd run -p /tmp/$f.lua --node lvs01 --once > /tmp/once-$f.txt 2>&1 || { cat /tmp/once-$f.txt; fail "$f: lvsd run --once"; }
    ipvsadm -L -n > /tmp/lvsd-$f.txt
    same /tmp/keepalived-$f.txt /tmp/lvsd-$f.txt
    echo "import $c: same table"
    cat /tmp/lvsd-$f.txt
    count=$((count+1))
done
clean
echo "import: ok ($count configs, the same table each)"

# PING_CHECK, running: keepalived and the imported policy take the same real out of the table.
# 198.51.100.156 is a local address (the kernel answers its pings); 203.0.113.9 is routed into
# a dummy interface, which drops what it is given.
ip link add deadnet type dummy
ip link set deadnet up
ip addr add 203.0.113.1/24 dev deadnet
P=fidelity/ping-check
reals() { ipvsadm -L -n | awk '$1 == "->" && $2 ~ /^[0-9]/ {print $2}' | sort | tr '\n' ' '; }
# settle WHO PID: wait at most 30 s for the table's reals to be the answering one alone, check
# that they stay so for 3 s (a check of 1 s with no retry would have taken it out by then),
# keep the table in /tmp/WHO-ping.txt and stop PID. Its log is /tmp/WHO-ping.log.
settle() {
    want="198.51.100.156:80 "
    n=0
    until [ "$(reals)" = "$want" ]; do
        n=$((n+1))
        [ $n -lt 300 ] || { ipvsadm -L -n; cat /tmp/$1-ping.log; fail "$1: the table's reals are not '$want' after 30 s"; }
        sleep 0.1
    done
    sleep 3
    [ "$(reals)" = "$want" ] || { ipvsadm -L -n; cat /tmp/$1-ping.log; fail "$1: the table's reals changed from '$want'"; }
    ipvsadm -L -n > /tmp/$1-ping.txt
    kill $2
    wait $2 || true
    clean
}
keepalived --dont-fork --log-console --check -f $F/$P.conf \
    -p /tmp/ka.pid -c /tmp/kc.pid -r /tmp/kv.pid > /tmp/keepalived-ping.log 2>&1 &
settle keepalived $!
lvsd import $F/$P.conf -o /tmp/ping.lua 2> /tmp/import-ping.log || { cat /tmp/import-ping.log; fail "ping: import"; }
grep -q 'lvsd.check.ping' /tmp/ping.lua || { cat /tmp/ping.lua; fail "ping: PING_CHECK not imported as a ping check"; }
mkdir -p -m 0700 /run/lvsd-ping
lvsd run -p /tmp/ping.lua --node lvs01 --control /run/lvsd-ping/ctl.sock 2> /tmp/lvsd-ping.log &
settle lvsd $!
same /tmp/keepalived-ping.txt /tmp/lvsd-ping.txt
echo "import ping: keepalived and lvsd keep the answering real, drop the silent one"
cat /tmp/lvsd-ping.txt
