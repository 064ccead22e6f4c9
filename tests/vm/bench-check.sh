# Health-check benchmark (prints figures; not part of cargo test): N real servers, each
# TCP-checked every second, by keepalived 2.2.7 (checker only) and then by `lvsd run` (kernel
# IPVS backend), one after the other on the same listeners; then lvsd with L Lua checks per
# second. For each: CPU seconds per minute (utime + stime of all its processes from
# /proc/PID/stat) over a window after a warm-up, RSS, and the checks per second the listeners
# actually accepted. Run it with scripts/bench-check-vm, which sets these:
#   BENCH_REALS (10000)  BENCH_LUA (5000)  BENCH_SECS window (60)  BENCH_WARM warm-up (15)
#   BENCH_ROUNDS keepalived-then-lvsd rounds (1)  BENCH_PARTS (keepalived,lvsd,lua)
#   BENCH_INTERVAL check interval in seconds (1; a long one measures the daemons without checks)
#   BENCH_STRACE=1: also count each daemon's syscalls for 10 s after its window
#   BENCH_LVSD_LOG: LVSD_LOG for lvsd (warn)  BENCH_LVSD_RESYNC: lvsd's --resync (its default, 10)
#
# Layout: a bridge in this namespace joins the director namespaces bc-ka (keepalived,
# 198.51.100.1), bc-lv (lvsd, .2) and bc-lu (lvsd with Lua checks, .3), each made afresh for
# every run so that each daemon starts on an empty IPVS table, and four real-server namespaces
# bc-rs1..4, each holding ten addresses (198.51.100.11-20, 21-30, 31-40, 41-50) and one
# check-listen process listening on its share of the reals. Real k is
# 198.51.100.(11 + k % 40):(10000 + k / 40); the reals of one port form one DR virtual
# service 192.0.2.1:PORT (wlc, weight 1). Real 0 (198.51.100.11:10000) is served by a listener
# of its own: after each window that listener is stopped, the real must leave the table, and
# started again, the real must come back: the checks' results are acted on.
set -e
N=${BENCH_REALS:-10000}
L=${BENCH_LUA:-5000}
W=${BENCH_SECS:-60}
WARM=${BENCH_WARM:-15}
ROUNDS=${BENCH_ROUNDS:-1}
PARTS=${BENCH_PARTS:-keepalived,lvsd,lua}
RESYNC=${BENCH_LVSD_RESYNC:+--resync $BENCH_LVSD_RESYNC}
I=${BENCH_INTERVAL:-1}
A=40
IP=/sbin/ip.real
command -v keepalived >/dev/null || fail "keepalived is not in the initramfs (scripts/vm copies the host's)"
command -v check-listen >/dev/null || fail "check-listen is not in the initramfs (scripts/bench-check-vm passes it)"
[ "$N" -ge 1 ] && [ "$L" -le "$N" ] || fail "BENCH_LUA ($L) must not exceed BENCH_REALS ($N)"
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk "BEGIN{printf \"%.1f\", $(up) - $1}"; }
# Both daemons and the listeners may hold one socket per real.
ulimit -n 262144
echo "bench-check: kernel $(uname -r), clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource), $(grep -c ^processor /proc/cpuinfo) CPUs, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB"

LPIDS=""
VPID=""
DPID=""
cleanup() {
    set +e
    [ -n "$DPID" ] && kill -9 $DPID 2>/dev/null
    for p in $LPIDS $VPID; do kill $p 2>/dev/null; done
    sleep 0.5
    for n in ka lv lu rs1 rs2 rs3 rs4; do ip netns del bc-$n 2>/dev/null; done
    ip link del br0 2>/dev/null
    return 0
}
trap cleanup EXIT

ip link add br0 type bridge
ip link set br0 up
# netns NAME ADDRESS...: a fresh namespace bc-NAME on the bridge (eth0) with these addresses.
netns() {
    n=$1; shift
    ip netns del bc-$n 2>/dev/null || true
    # The old namespace's veth goes away with it, a moment later.
    i=0
    while ip link show v$n > /dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "v$n still there 10 s after its namespace was deleted"
        sleep 0.1
    done
    ip netns add bc-$n
    ip -n bc-$n link set lo up
    ip link add v$n type veth peer name eth0 netns bc-$n
    ip link set v$n master br0 up
    ip -n bc-$n link set eth0 up
    for a in "$@"; do ip -n bc-$n addr add $a/24 dev eth0; done
}
for r in 1 2 3 4; do
    netns rs$r $(awk -v r=$r 'BEGIN {for (a = 1 + r * 10; a <= 10 + r * 10; a++) printf "198.51.100.%d ", a}')
done

# The reals: "addr port" per line, k = 0..N-1.
awk -v n=$N -v a=$A 'BEGIN{for(k=0;k<n;k++) printf "198.51.100.%d %d\n", 11 + k % a, 10000 + int(k / a)}' > /tmp/reals
awk 'NR == 1 {print $1 ":" $2 > "/tmp/victim.list"; next}
     {split($1, o, "."); r = int((o[4] - 11) / 10) + 1; print $1 ":" $2 > ("/tmp/rs" r ".list")}' /tmp/reals
for r in 1 2 3 4; do touch /tmp/rs$r.list; done
t0=$(up)
for r in 1 2 3 4; do
    $IP netns exec bc-rs$r check-listen --count /tmp/rs$r.count < /tmp/rs$r.list > /tmp/rs$r.log 2>&1 &
    LPIDS="$LPIDS $!"
done
start_victim() {
    rm -f /tmp/victim.count
    $IP netns exec bc-rs1 check-listen --count /tmp/victim.count < /tmp/victim.list > /tmp/victim.log 2>&1 &
    VPID=$!
    n=0
    until [ -f /tmp/victim.count ]; do
        n=$((n + 1)); [ $n -lt 300 ] || fail "the listener of real 0 did not start: $(cat /tmp/victim.log)"
        sleep 0.1
    done
}
start_victim
n=0
until [ -f /tmp/rs1.count ] && [ -f /tmp/rs2.count ] && [ -f /tmp/rs3.count ] && [ -f /tmp/rs4.count ]; do
    n=$((n + 1)); [ $n -lt 1200 ] || { cat /tmp/rs*.log; fail "listeners not up after 120 s"; }
    sleep 0.1
done
socks=$(cat /tmp/rs?.count /tmp/victim.count | awk '{s += $4} END {print s}')
[ "$socks" = "$N" ] || fail "$socks listeners, expected $N"
echo "bench-check: $N listeners in 4 namespaces (40 addresses) up in $(since $t0) s"

# --- measuring --------------------------------------------------------------------------
COUNTS="/tmp/rs1.count /tmp/rs2.count /tmp/rs3.count /tmp/rs4.count /tmp/victim.count"
# One line per listener file: "file boottime accepted fresh sockets handshakes".
snap() { for f in $COUNTS; do echo "$f $(cat $f)"; done > $1; }
# Per second between two snapshots, each listener over its own interval: connections
# accepted (column 3), or handshakes answered (column 6: the namespace's kernel counters, so
# one file per namespace; the victim shares bc-rs1 with rs1). A bare TCP check of lvsd's is
# half-open, never accepted; the checks are the handshakes.
rate_of() { awk -v c=$1 -v skip=$2 'NR == FNR {t[$1] = $2; a[$1] = $c; next} ($1 in t) && $1 != skip && $2 > t[$1] {r += ($c - a[$1]) / ($2 - t[$1])} END {printf "%.0f", r}' $3 $4; }
accepted() { rate_of 3 none $1 $2; }
rate() { rate_of 6 /tmp/victim.count $1 $2; }
fresh() { awk '{s += $4} END {print s}' $1; }
# The daemon's processes: the one started and its children (keepalived's checker).
procs() { echo $1; cat /proc/[0-9]*/stat 2>/dev/null | awk -v p=$1 '$4 == p {print $1}'; }
# utime and stime in clock ticks (USER_HZ, 100 on x86), summed over processes.
ticks() { for p in $*; do cat /proc/$p/stat 2>/dev/null; done | awk '{u += $14; s += $15} END {print u + 0, s + 0}'; }
mem() { for p in $*; do cat /proc/$p/status 2>/dev/null; done | awk '/^VmRSS:/ {r += $2} /^VmHWM:/ {h += $2} END {print r + 0, h + 0}'; }
# Context switches of all their threads, and of the whole guest.
switches() { for p in $*; do cat /proc/$p/task/*/status 2>/dev/null; done | awk '/ctxt_switches:/ {n += $2} END {print n + 0}'; }
gswitches() { awk '/^ctxt / {print $2}' /proc/stat; }
# The whole guest's busy time (all CPUs) in ticks, from /proc/stat.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
reals_in() { $IP netns exec $1 ipvsadm -L -n | grep -c '^  -> [0-9]' || true; }
has_real0() { $IP netns exec $1 ipvsadm -L -n | grep -q '^  -> 198.51.100.11:10000 '; }

# measure NAME ROUND NAMESPACE PID EXPECTED_REALS: waits for the table, warms up, measures,
# then takes real 0's listener away and back.
measure() {
    name=$1; round=$2; ns=$3; pid=$4; want=$5
    t0=$(up)
    n=0
    while [ "$(reals_in $ns)" -lt $want ]; do
        kill -0 $pid 2>/dev/null || { tail -30 /tmp/$name.log; fail "$name exited"; }
        n=$((n + 1)); [ $n -lt 600 ] || { tail -30 /tmp/$name.log; fail "$name: $(reals_in $ns) of $want reals in the table after 600 s"; }
        sleep 1
    done
    $IP netns exec $ns ipvsadm -S -n | sort > /tmp/$name.table
    sleep $WARM
    pids=$(procs $pid)
    echo "bench-check: $name, round $round: $want reals in the table $(since $t0) s after the start; processes: $(for p in $pids; do echo -n "$p $(cat /proc/$p/comm) ($(ls /proc/$p/task | wc -l) threads) "; done)"
    snap /tmp/$name.s0; c0=$(ticks $pids); l0=$(ticks $LPIDS); b0=$(busy); x0=$(switches $pids); g0=$(gswitches); t0=$(up)
    sleep $W
    snap /tmp/$name.s1; c1=$(ticks $pids); l1=$(ticks $LPIDS); b1=$(busy); x1=$(switches $pids); g1=$(gswitches); t1=$(up)
    m=$(mem $pids)
    inside=$(reals_in $ns)
    awk -v name=$name -v round=$round -v want=$want -v c0="$c0" -v c1="$c1" -v l0="$l0" -v l1="$l1" -v b0=$b0 -v b1=$b1 \
        -v t0=$t0 -v t1=$t1 -v m="$m" -v np=$(echo $pids | wc -w) -v rate=$(rate /tmp/$name.s0 /tmp/$name.s1) -v acc=$(accepted /tmp/$name.s0 /tmp/$name.s1) \
        -v fresh=$(fresh /tmp/$name.s1) -v inside=$inside -v x=$((x1 - x0)) -v g=$((g1 - g0)) 'BEGIN {
        split(c0, a); split(c1, b); split(l0, la); split(l1, lb); split(m, mm); w = t1 - t0
        u = (b[1] - a[1]) / 100; s = (b[2] - a[2]) / 100
        printf "BENCH %s: %d reals, %.0f checks/s answered (%.1f%% of %d/s; %.0f/s accepted), %d listeners accepted one in the last 3 s, %d reals in the table\n", name, want, rate, rate * 100 / want, want, acc, fresh, inside
        printf "BENCH %s: CPU %.2f s/min (user %.2f + system %.2f; %.1f%% of a core; %.2f ms per check), RSS %.1f MiB (peak %.1f MiB), %d processes; window %.1f s\n", name, (u + s) * 60 / w, u * 60 / w, s * 60 / w, (u + s) * 100 / w, (rate > 0 ? (u + s) * 1000 / (rate * w) : 0), mm[1] / 1024, mm[2] / 1024, np, w
        printf "BENCH %s: context switches %.0f/s (guest %.0f/s); listeners CPU %.2f s/min; guest busy %.0f%% of its 2 CPUs\n", name, x / w, g / w, ((lb[1] - la[1]) + (lb[2] - la[2])) / 100 * 60 / w, (b1 - b0) / w / 2
        printf "DATA %s %d %d %.0f %d %.3f %.3f %.1f %.1f %.1f %d %d\n", name, round, want, rate, fresh, (u + s) * 60 / w, u * 60 / w, mm[1] / 1024, mm[2] / 1024, w, inside, np
    }'
    if [ "${BENCH_STRACE:-0}" = 1 ]; then
        # Syscalls per check, for explaining CPU figures (strace slows the daemon down).
        sargs=""; for p in $pids; do sargs="$sargs -p $p"; done
        snap /tmp/$name.s2
        timeout -s INT 10 strace -c -f $sargs > /tmp/$name.strace 2>&1 || true
        snap /tmp/$name.s3
        echo "bench-check: $name under strace for 10 s: $(rate /tmp/$name.s2 /tmp/$name.s3) checks/s"
        grep -v '^strace:' /tmp/$name.strace | head -20
    fi
    # With long intervals (the daemon's cost without checks) nothing would move.
    [ "$I" -le 10 ] || return 0
    # Real 0's listener goes away: its checks fail and the real must leave the table. Not
    # fatal: a daemon that cannot keep up may take longer than the bound (reported).
    has_real0 $ns && before="in the table" || before="NOT in the table"
    kill $VPID; wait $VPID 2>/dev/null || true
    t0=$(up); n=0
    while has_real0 $ns && [ $n -lt 120 ]; do n=$((n + 1)); sleep 0.5; done
    has_real0 $ns && gone="STILL IN after $(since $t0) s" || gone="out of the table after $(since $t0) s"
    start_victim
    t0=$(up); n=0
    until has_real0 $ns || [ $n -ge 120 ]; do n=$((n + 1)); sleep 0.5; done
    has_real0 $ns && back="back after $(since $t0) s" || back="NOT BACK after $(since $t0) s"
    echo "BENCH $name: real 0 ($before) listener stopped -> $gone; started -> $back"
}

stop() {
    kill -TERM $1 2>/dev/null || true
    n=0
    while kill -0 $1 2>/dev/null; do
        n=$((n + 1))
        [ $n -lt 600 ] || { echo "bench-check: $2 ignored SIGTERM for 60 s, killing it"; kill -9 $1; }
        sleep 0.1
    done
    wait $1 2>/dev/null || true
    DPID=""
}

# The keepalived configuration: one virtual_server per port, TCP_CHECK on every real.
awk 'BEGIN {print "global_defs {\n    router_id bench\n}"}
    {if ($2 != port) {if (port) print "}"; port = $2
        printf "virtual_server 192.0.2.1 %d {\n    delay_loop %d\n    lb_algo wlc\n    lb_kind DR\n    protocol TCP\n", port, interval}
     printf "    real_server %s %d {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 5\n            retry 1\n            delay_before_retry 1\n        }\n    }\n", $1, $2}
    END {print "}"}' interval=$I /tmp/reals > /tmp/keepalived.conf
# The same for lvsd, written as a policy would be: a loop.
policy() {  # FILE REALS CHECK
    cat > $1 <<EOF
-- $2 reals, 40 per DR service 192.0.2.1:PORT, as in keepalived.conf.
local check = $3
local n, a = $2, 40
for s = 0, (n + a - 1) // a - 1 do
    local port = 10000 + s
    local reals = {}
    for i = 0, a - 1 do
        if s * a + i < n then reals[#reals + 1] = string.format("198.51.100.%d:%d", 11 + i, port) end
    end
    lvsd.service("s" .. port) { vip = "192.0.2.1:" .. port, scheduler = "wlc", forward = "dr", check = check, reals = reals }
end
EOF
    lvsd check $1 --node bench > /dev/null || fail "policy $1 does not validate"
}
# In a directory of their own, as in /etc/lvsd: lvsd watches the policy's directory, and /tmp
# is where the listeners write their counts every second.
mkdir -p /etc/lvsd-bench
policy /etc/lvsd-bench/tcp.lua $N "lvsd.check.tcp { interval = $I, timeout = 5, retries = 1, retry_delay = 1 }"
policy /etc/lvsd-bench/lua.lua $L "lvsd.check.lua { interval = $I, timeout = 5, retries = 1, retry_delay = 1,
    run = function(rs) local c = lvsd.net.tcp(rs.ip, rs.port) c:close() return true end }"
echo "bench-check: $(keepalived --version 2>&1 | head -1); $(lvsd --version 2>&1 | head -1)"

round=1
while [ $round -le $ROUNDS ]; do
    case ,$PARTS, in *,keepalived,*)
        netns ka 198.51.100.1
        $IP netns exec bc-ka keepalived --dont-fork --log-console --no-syslog --dont-release-ipvs --check \
            -f /tmp/keepalived.conf -p /tmp/ka.pid -c /tmp/kc.pid -r /tmp/kv.pid > /tmp/keepalived.log 2>&1 &
        DPID=$!
        measure keepalived $round bc-ka $DPID $N
        grep 'service \[198.51.100.11\]:tcp:10000' /tmp/keepalived.log | tail -4
        echo "bench-check: keepalived log: $(wc -l < /tmp/keepalived.log) lines, $(grep -c -i -E 'fail|timeout|timedout' /tmp/keepalived.log || true) about failures"
        stop $DPID keepalived
        ip netns del bc-ka
    ;; esac
    case ,$PARTS, in *,lvsd,*)
        netns lv 198.51.100.2
        LVSD_LOG=${BENCH_LVSD_LOG:-warn} $IP netns exec bc-lv lvsd run -p /etc/lvsd-bench/tcp.lua --node bench $RESYNC --control /run/lvsd-tcp/lvsd.sock > /tmp/lvsd.log 2>&1 &
        DPID=$!
        measure lvsd $round bc-lv $DPID $N
        grep '198.51.100.11:10000' /tmp/lvsd.log | tail -4
        echo "bench-check: lvsd log: $(wc -l < /tmp/lvsd.log) lines"
        stop $DPID lvsd
        ip netns del bc-lv
        if [ -f /tmp/keepalived.table ]; then
            if cmp -s /tmp/keepalived.table /tmp/lvsd.table; then
                echo "BENCH same IPVS table from keepalived.conf and the lvsd policy: yes ($(wc -l < /tmp/lvsd.table) lines of ipvsadm -S -n)"
            else
                echo "BENCH same IPVS table from keepalived.conf and the lvsd policy: NO"
                diff /tmp/keepalived.table /tmp/lvsd.table | head -10
            fi
        fi
    ;; esac
    round=$((round + 1))
done

case ,$PARTS, in *,lua,*)
    netns lu 198.51.100.3
    LVSD_LOG=${BENCH_LVSD_LOG:-warn} $IP netns exec bc-lu lvsd run -p /etc/lvsd-bench/lua.lua --node bench $RESYNC --control /run/lvsd-lua/lvsd.sock > /tmp/lvsd-lua.log 2>&1 &
    DPID=$!
    measure lvsd-lua 1 bc-lu $DPID $L
    grep '198.51.100.11:10000' /tmp/lvsd-lua.log | tail -4
    stop $DPID lvsd-lua
    ip netns del bc-lu
;; esac
echo "bench-check: done"
