# Health checks with the kernel backend: `lvsd run` (no --dry-run) with tests/vm/checks.lua
# in front of real servers in namespaces; every assertion reads `ipvsadm -L -n`.
#   - a TCP- and an HTTP-checked real leave the table within fall x interval of their listener
#     stopping and return within rise x interval of it starting again;
#   - an inhibit_on_failure real stays at weight 0 while down;
#   - losing quorum puts the sorry server in, regaining it takes it out;
#   - a Lua check and a weight function set the kernel weight;
#   - drain / undrain over the control socket (lvsd repl) show weight 0, kept through a
#     resync, and back;
#   - SIGTERM stops lvsd with exit code 0 and deletes the services it put in.
# Waits poll ipvsadm every 0.2 s up to a bound counted from the change, and fail with the
# table, lvsd's status and its log.
set -e
INTERVAL=1 FALL=2 RISE=2
# Slack on top of interval x fall/rise: the 10% interval jitter, the check itself, the
# director's resync, the 0.2 s polling, and an emulated CPU on a busy host (seen up to 1.7 s
# over with a host load of 5 on 2 cores).
SLACK=3
DOWN=$((INTERVAL * FALL + SLACK))
UP=$((INTERVAL * RISE + SLACK))
WEIGHT=$((INTERVAL + SLACK))

WEB=203.0.113.10:80 Q=203.0.113.11:80 DYN=203.0.113.12:80
D=/tmp/checks
rm -rf $D
mkdir -m 700 $D
CTL=$D/ctl/lvsd.sock
LOG=$D/lvsd.log
REALS="21 22 23 24 25 26 27"
LVSD=

# Uptime in centiseconds into $NOW, without forking: polls stay cheap under TCG.
clock() { read -r u _ < /proc/uptime; NOW=$((${u%.*} * 100 + 1${u#*.} - 100)); }
# Seconds since the centisecond time $1, as "S.D".
since() { clock; e=$((NOW - $1)); echo "$((e / 100)).$((e % 100 / 10))"; }
# More than $2 seconds since the centisecond time $1?
over() { clock; [ $((NOW - $1)) -gt $(($2 * 100)) ]; }

ip link add br0 type bridge
ip link set br0 up
ip addr add 198.51.100.1/24 dev br0
for i in $REALS; do
    ip netns add rs$i
    ip link add v$i type veth peer name eth0 netns rs$i
    ip link set v$i master br0 up
    ip netns exec rs$i ip link set lo up
    ip netns exec rs$i ip link set eth0 up
    ip netns exec rs$i ip addr add 198.51.100.$i/24 dev eth0
done
cleanup() {
    [ -n "$LVSD" ] && kill $LVSD 2>/dev/null
    for i in $REALS; do ip netns pids rs$i 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del rs$i 2>/dev/null; done
    true
}
trap cleanup EXIT

# What each real server runs: busybox httpd for the HTTP-checked ones (22, 27), an agent
# answering one line from a file on port 7000 for the Lua-checked one (26), a plain TCP
# listener for the others. ip.real, not the `ip` function, so that $! is the listener itself
# (ip netns exec execs it) and stop() really stops it.
mkdir -p $D/www-rs22 $D/www-rs27
echo ok > $D/www-rs22/health
echo "load 30" > $D/www-rs27/load
echo 5 > $D/agent-rs26
start() {
    case $1 in
        rs22|rs27) /sbin/ip.real netns exec $1 busybox httpd -f -p 80 -h $D/www-$1 & ;;
        rs26) /sbin/ip.real netns exec $1 busybox nc -ll -p 7000 -e cat $D/agent-rs26 & ;;
        *) /sbin/ip.real netns exec $1 busybox nc -ll -p 80 -e true & ;;
    esac
    echo $! > $D/$1.pid
}
# Is something in namespace $1 listening on TCP port $2?
# (busybox may listen on IPv6 sockets that also take IPv4: /proc/net/tcp6.)
listening() {
    ip netns exec $1 awk -v p=":$(printf %04X $2)" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6
}
stop() {
    pid=$(cat $D/$1.pid)
    kill $pid
    wait $pid 2>/dev/null || true
}
clock; T0=$NOW
for i in $REALS; do start rs$i; done
for i in $REALS; do
    port=80
    [ $i = 26 ] && port=7000
    until listening rs$i $port; do over $T0 10 && fail "the listener of rs$i did not start"; sleep 0.1; done
done

# The kernel table as "PROTO VIP:PORT REAL:PORT FORWARD WEIGHT" lines, in ipvsadm's order.
table() {
    ipvsadm -L -n | awk '/^(TCP|UDP|SCTP|FWM) /{s=$1" "$2} /^  ->/ && $2 != "RemoteAddress:Port" {print s, $2, $3, $4}'
}
dump() {
    echo "----- ipvsadm -L -n"
    ipvsadm -L -n
    echo "----- lvsd status"
    lvsd status --control $CTL 2>&1 || true
    echo "----- lvsd log"
    cat $LOG
}
# A process that has not exited (a zombie answers kill -0 too).
running() { st=; read -r _ _ st _ < /proc/$1/stat 2>/dev/null; [ -n "$st" ] && [ "$st" != Z ]; }
alive() { running $LVSD || { dump; fail "lvsd exited"; }; }

NL='
'
# One snapshot of the table into $SNAP, framed by newlines.
snap() { SNAP="$NL$(table)$NL"; }
# Does $SNAP satisfy one condition?
#   has LINE        the exact line is there
#   lacks SVC REAL  the service has no such real
#   table FILE      the whole table is FILE
holds() {
    case $1 in
        has) case $SNAP in *"$NL$2$NL"*) return 0 ;; esac; return 1 ;;
        lacks) case $SNAP in *"${NL}TCP $2 "*) return 1 ;; esac; return 0 ;;
        table) [ "$SNAP" = "$NL$(cat "$2")$NL" ] ;;
    esac
}
# await BOUND < CONDITIONS: conditions "what|kind|argument" (kinds as in holds), one a line.
# Every 0.2 s one snapshot of the table is taken; each condition is reported with the time
# (since $T0) at which the first snapshot that satisfies it was complete; a condition not
# met by a snapshot complete within BOUND s fails.
await() {
    pending=$(cat)
    while :; do
        snap
        el=$(since $T0)
        if over $T0 $1; then
            dump
            fail "not within $1 s: $(echo "$pending" | cut -d'|' -f1 | tr '\n' ';')"
        fi
        left=
        while IFS='|' read -r what kind arg; do
            if holds "$kind" "$arg"; then
                echo "  $what: $el s (bound $1 s)"
            else
                left="$left$what|$kind|$arg$NL"
            fi
        done <<EOF
$pending
EOF
        pending=${left%$NL}
        [ -n "$pending" ] || return 0
        alive
        sleep 0.2
    done
}
# hold SECONDS FILE [SKIP]: the table, without lines containing SKIP, stays exactly FILE for
# SECONDS (sampled every 0.2 s).
hold() {
    clock
    t=$NOW
    until over $t $1; do
        alive
        if [ -n "$3" ]; then SNAP="$NL$(table | grep -vF "$3")$NL"; else snap; fi
        holds table $2 || { dump; echo "----- expected"; cat $2; fail "the table changed while it should have held"; }
        sleep 0.2
    done
    echo "  held for $1 s"
}
repl() { echo "$1" | lvsd repl --control $CTL || { dump; fail "lvsd repl: $1"; }; }

echo "start:"
clock; T0=$NOW
lvsd run -p tests/vm/checks.lua --node lvs01 --control $CTL 2> $LOG &
LVSD=$!
# Every real counts as up at start; the first results set the dynamic weights: 5 from the
# Lua check's agent, 100 - 30 from the weight function.
cat > $D/all-up.txt <<EOF
TCP $WEB 198.51.100.21:80 Route 1
TCP $WEB 198.51.100.22:80 Route 2
TCP $WEB 198.51.100.23:80 Route 3
TCP $Q 198.51.100.24:80 Route 2
TCP $Q 198.51.100.25:80 Route 2
TCP $DYN 198.51.100.26:80 Route 5
TCP $DYN 198.51.100.27:80 Route 70
EOF
await 15 <<EOF
table complete, dynamic weights set|table|$D/all-up.txt
EOF
hold $INTERVAL $D/all-up.txt

echo "listeners of 21-24 stopped, the agent of 26 says busy:"
clock; T0=$NOW
for i in 21 22 23 24; do stop rs$i; done
echo busy > $D/agent-rs26
await $DOWN <<EOF
tcp real out|lacks|$WEB 198.51.100.21:80
http real out|lacks|$WEB 198.51.100.22:80
inhibited real at weight 0|has|TCP $WEB 198.51.100.23:80 Route 0
quorum real out|lacks|$Q 198.51.100.24:80
quorum lost, sorry server in|has|TCP $Q 198.51.100.99:80 Route 1
the live quorum real out too (keepalived)|lacks|$Q 198.51.100.25:80
lua-checked real out|lacks|$DYN 198.51.100.26:80
EOF
cat > $D/down.txt <<EOF
TCP $WEB 198.51.100.23:80 Route 0
TCP $Q 198.51.100.99:80 Route 1
TCP $DYN 198.51.100.27:80 Route 70
EOF
# Nothing else changed, and more failed checks change nothing: the inhibited real stays at
# weight 0, nothing flaps; the sorry server alone serves the service without quorum.
hold $((INTERVAL * 2)) $D/down.txt

echo "listeners started again, the agent says 5:"
clock; t=$NOW
for i in 21 22 23 24; do start rs$i; done
for i in 21 22 23 24; do
    until listening rs$i 80; do over $t 10 && fail "the listener of rs$i did not start"; sleep 0.1; done
done
echo "  listening after $(since $t) s"
# Counted from here: starting four listeners takes about a second under TCG.
clock; T0=$NOW
echo 5 > $D/agent-rs26
await $UP <<EOF
tcp real back|has|TCP $WEB 198.51.100.21:80 Route 1
http real back|has|TCP $WEB 198.51.100.22:80 Route 2
inhibited real back at weight 3|has|TCP $WEB 198.51.100.23:80 Route 3
quorum real back|has|TCP $Q 198.51.100.24:80 Route 2
quorum back, sorry server out|lacks|$Q 198.51.100.99:80
lua-checked real back at weight 5|has|TCP $DYN 198.51.100.26:80 Route 5
the whole table as at start|table|$D/all-up.txt
EOF

echo "the agent says 9, the load goes to 80:"
clock; T0=$NOW
echo 9 > $D/agent-rs26
echo "load 80" > $D/www-rs27/load
await $WEIGHT <<EOF
lua check sets weight 9|has|TCP $DYN 198.51.100.26:80 Route 9
weight function sets 100 - 80|has|TCP $DYN 198.51.100.27:80 Route 20
EOF
sed -e 's/\(26:80 Route\) 5$/\1 9/' -e 's/\(27:80 Route\) 70$/\1 20/' $D/all-up.txt > $D/weights.txt
hold $INTERVAL $D/weights.txt

echo "drain and undrain:"
sed 's/\(22:80 Route\) 2$/\1 0/' $D/weights.txt > $D/drained.txt
repl 'lvsd.drain("web", "198.51.100.22:80")'
# In the table by the time the command returns.
snap
holds table $D/drained.txt || { dump; fail "drained: not at weight 0"; }
echo "  drained: weight 0"
# Kept through the resync another real's change causes (the load goes to 60: weight 40).
clock; T0=$NOW
echo "load 60" > $D/www-rs27/load
sed 's/\(27:80 Route\) 20$/\1 40/' $D/drained.txt > $D/drained-40.txt
await $WEIGHT <<EOF
weight 40 for 27, 22 still drained|table|$D/drained-40.txt
EOF
repl 'lvsd.undrain("web", "198.51.100.22:80")'
sed 's/\(27:80 Route\) 20$/\1 40/' $D/weights.txt > $D/undrained.txt
snap
holds table $D/undrained.txt || { dump; fail "undrained: not back at weight 2"; }
echo "  undrained: weight 2"

# The status reads the kernel's table on a netlink socket of its own and lists its reals.
st=$(lvsd status --control $CTL) || { dump; fail "lvsd status"; }
case $st in *"cannot be read"*|*"table unknown"*) dump; fail "lvsd status did not read the kernel's table";; esac
[ "$(echo "$st" | grep -c '^  -> 198\.51\.100\.')" -ge 5 ] || { echo "$st"; fail "lvsd status lists fewer reals than the table holds"; }
echo "  status: the kernel's table read"

echo "SIGTERM:"
clock; T0=$NOW
kill -TERM $LVSD
# A stop that hangs is killed after 10 s (exit code 137).
(sleep 10; kill -KILL $LVSD 2>/dev/null) &
watchdog=$!
rc=0
wait $LVSD || rc=$?
took=$(since $T0)
over $T0 5 && { cat $LOG; fail "lvsd took $took s to stop"; }
kill $watchdog 2>/dev/null || true
LVSD=
[ $rc = 0 ] || { cat $LOG; fail "lvsd exited with $rc after SIGTERM"; }
echo "  exited 0 after $took s"
[ ! -e $CTL ] || fail "the control socket $CTL is left behind"
if grep -q panicked $LOG; then cat $LOG; fail "lvsd panicked"; fi
# keepalived's default: the services lvsd put in are deleted on stop (release_ipvs_on_stop).
if ipvsadm -L -n | grep -qE '^(TCP|UDP|SCTP|FWM) '; then ipvsadm -L -n; fail "the services are left in the table after the stop"; fi
echo "  services released"
echo "checks: ok"
