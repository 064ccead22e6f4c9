# IPVS benchmark (prints figures; not part of cargo test): N services x 4 reals (N =
# LVSD_BENCH_SERVICES, default 10,000) applied to an empty table by `lvsd run --once` against
# `ipvsadm -R` loading the same table, then a no-change resync and a one-weight change.
# LVSD_BENCH_PROFILE=1 adds a syscall count (strace -c) of the no-change resync.
# Run it with scripts/bench-ipvs.
set -e
N=${LVSD_BENCH_SERVICES:-10000}
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk "BEGIN{printf \"%.2f\", $2 - $1}"; }
# The same table as ipvsadm restore rules.
awk -v n=$N 'BEGIN{for(i=0;i<n;i++){v=sprintf("192.0.2.%d:%d", i%250+1, 1000+int(i/250));
  printf "-A -t %s -s wrr\n", v; for(r=1;r<=4;r++) printf "-a -t %s -r 198.51.100.%d -g -w 1\n", v, r}}' > /tmp/rules
sed "s/^local N = 10000\$/local N = $N/" tests/vm/bench.lua > /tmp/bench.lua
grep -q "^local N = $N\$" /tmp/bench.lua || fail "bench.lua: cannot set N"
echo "bench: $(grep -c '^-A' /tmp/rules) services, $(grep -c '^-a' /tmp/rules) reals"

# Each tool gets a fresh network namespace, so a fresh IPVS table: after a flush the kernel
# keeps the deleted reals in a trash list that every later add scans, which would slow
# whoever goes second.
ip netns add bench-ipvsadm
ip netns add bench-lvsd
trap 'ip netns del bench-ipvsadm; ip netns del bench-lvsd' EXIT
# With lo down the kernel takes every real server address for "not unicast".
ip netns exec bench-ipvsadm ip link set lo up
ip netns exec bench-lvsd ip link set lo up
t0=$(up); ip netns exec bench-ipvsadm ipvsadm -R < /tmp/rules; t1=$(up)
ipvsadm_s=$(secs $t0 $t1)
ip netns exec bench-ipvsadm ipvsadm -S -n > /tmp/ipvsadm-save.txt
t0=$(up); ip netns exec bench-ipvsadm ipvsadm -L -n > /dev/null; t1=$(up)
list_s=$(secs $t0 $t1)
echo "BENCH services x reals:           $N x 4"
echo "BENCH ipvsadm -R (empty table):   ${ipvsadm_s} s"

# Evaluating 10,000 services under TCG takes longer than the default 10 s load-time limit.
L="--load-time-limit ${LVSD_BENCH_LOAD_TIME:-600}"
P="-p /tmp/bench.lua --node lvs01 $L"
# lvsd's own split of a pass (the `ipvs_timing` log line): reading the table, the diff and
# the writes, without starting the process and loading the policy.
timing() { grep -o 'read_ms=[0-9.]*.*write_ms=[0-9.]*' /tmp/once.log | tail -1; }
run() {
    LVSD_LOG=warn,ipvs_timing=info ip netns exec bench-lvsd lvsd run "$@" --once > /tmp/once.out 2>/tmp/once.log \
        || { cat /tmp/once.log; fail "lvsd run failed"; }
}
t0=$(up); run $P; t1=$(up)
lvsd_s=$(secs $t0 $t1)
apply_out=$(cat /tmp/once.out); apply_t=$(timing)
ip netns exec bench-lvsd ipvsadm -S -n > /tmp/lvsd-save.txt
cmp -s /tmp/ipvsadm-save.txt /tmp/lvsd-save.txt && identical=yes || identical=NO
echo "BENCH lvsd run --once (empty):    ${lvsd_s} s   [$apply_out] [$apply_t]"
echo "BENCH ratio lvsd / ipvsadm -R:    $(awk "BEGIN{printf \"%.3f\", $lvsd_s / $ipvsadm_s}")x"
echo "BENCH same table as ipvsadm -R:   $identical"

t0=$(up); run $P; t1=$(up)
nochange_s=$(secs $t0 $t1); nochange_out=$(cat /tmp/once.out); nochange_t=$(timing)
t0=$(up); run -p /tmp/bench.lua --node changed $L; t1=$(up)
change_s=$(secs $t0 $t1); change_out=$(cat /tmp/once.out); change_t=$(timing)
t0=$(up); lvsd plan /tmp/bench.lua --node lvs01 $L > /dev/null; t1=$(up)
plan_s=$(secs $t0 $t1)
# The policy's evaluation alone, `lvsd check`: once as it is, once with its declarations made
# no-ops, which leaves the policy's own Lua (the loop, string.format, concatenations, table
# constructors) and the process start. Their difference is what lvsd spends reading the
# declarations into its model and validating it; the apply minus that difference is what the
# apply would take if reading declarations cost nothing.
sed 's/lvsd[.]service("s" [.][.] i)/noop("s" .. i)/; 1i local function noop() return function() end end' \
    /tmp/bench.lua > /tmp/bench-noop.lua
grep -q 'noop("s" .. i)' /tmp/bench-noop.lua || fail "bench.lua: cannot make its declarations no-ops"
t0=$(up); lvsd check /tmp/bench.lua --node lvs01 $L > /dev/null; t1=$(up)
check_s=$(secs $t0 $t1)
t0=$(up); lvsd check /tmp/bench-noop.lua --node lvs01 $L > /dev/null; t1=$(up)
noop_s=$(secs $t0 $t1)

echo "BENCH   of which policy + plan:   ${plan_s} s (lvsd plan, no kernel)"
echo "BENCH   the policy read (lvsd check): ${check_s} s; its own Lua, declarations as no-ops: ${noop_s} s"
echo "BENCH   the apply if reading declarations cost nothing: $(awk "BEGIN{printf \"%.2f s = %.3fx\", $lvsd_s - ($check_s - $noop_s), ($lvsd_s - ($check_s - $noop_s)) / $ipvsadm_s}") of ipvsadm -R"
echo "BENCH no-change resync:           ${nochange_s} s   [$nochange_out] [$nochange_t]"
echo "BENCH one weight changed:         ${change_s} s   [$change_out] [$change_t]"
echo "BENCH ipvsadm -L -n (same table): ${list_s} s"
# The kernel part of a pass: the sum of its timing fields.
ms() { echo "$1" | tr ' ' '\n' | sed -n 's/^[a-z_]*_ms=//p' | awk '{t += $1} END {if (NR) printf "%.0f", t}'; }
a=$(ms "$apply_t"); r=$(ms "$nochange_t"); c=$(ms "$change_t")
[ -n "$a" ] && [ -n "$r" ] && [ -n "$c" ] && [ "$a" -gt 0 ] && {
    echo "BENCH resync / apply (kernel part): ${r} ms / ${a} ms = $(awk "BEGIN{printf \"%.3f\", $r / $a}")"
    echo "BENCH one change / apply (kernel part): ${c} ms / ${a} ms = $(awk "BEGIN{printf \"%.3f\", $c / $a}")"
}
# A running director: a save that changes one weight is read and written for that service
# alone (the reload's `ipvs_timing` line says how many services it read).
sed 's/lvsd.node == "changed"/LIVE_CHANGE/' /tmp/bench.lua > /tmp/live-a.lua
sed 's/LIVE_CHANGE/false/' /tmp/live-a.lua > /tmp/live.lua
mkdir -p -m 0700 /run/lvsd-live
# Made here: the background job opens it after this shell may already have looked.
: > /tmp/live.log
LVSD_LOG=warn,ipvs_timing=debug ip netns exec bench-lvsd lvsd run -p /tmp/live.lua --node lvs01 $L --resync 3600 \
    --control /run/lvsd-live/ctl.sock --metrics 127.0.0.1:9815 > /tmp/live.log 2>&1 &
live=$!
# Bounded waits for the n-th timing line of a pass over this reach (n = $2, default 1).
wait_pass() {
    local i=0
    while [ "$(grep -c "reach=$1" /tmp/live.log)" -lt "${2:-1}" ]; do
        kill -0 $live 2>/dev/null || { cat /tmp/live.log; fail "the running director exited"; }
        i=$((i + 1)); [ $i -le 1200 ] || fail "no $1 pass in 600 s"
        sleep 0.5
    done
}
# The start's pass reads every service (none was wanted before); the periodic pass that
# follows at once (the interval's first tick) is what runs every --resync seconds.
wait_pass Whole 2
start_t=$(grep 'reach=Whole' /tmp/live.log | sed -n 1p | grep -o 'read_ms=.*')
periodic_t=$(grep 'reach=Whole' /tmp/live.log | sed -n 2p | grep -o 'read_ms=.*')
sed 's/LIVE_CHANGE/true/' /tmp/live-a.lua > /tmp/live.new && mv /tmp/live.new /tmp/live.lua
wait_pass Changed
live_t=$(grep 'reach=Changed' /tmp/live.log | tail -1 | grep -o 'read_ms=.*')
# What `lvsd status --json` costs at this size (the director reads the whole table for it),
# and how long the director's loop is busy with it: `lvsd events`, sent half a second after,
# is answered only when the loop is free again.
t0=$(up)
ip netns exec bench-lvsd lvsd status --control /run/lvsd-live/ctl.sock --json > /tmp/status.json 2>/tmp/status.err &
status_pid=$!
sleep 0.5
e0=$(up); ip netns exec bench-lvsd lvsd events --control /run/lvsd-live/ctl.sock > /dev/null 2>&1 || true; e1=$(up)
wait $status_pid && status_ok="$(wc -c < /tmp/status.json) bytes" || status_ok="failed: $(tail -1 /tmp/status.err)"
t1=$(up)
status_s=$(secs $t0 $t1); events_s=$(secs $e0 $e1)
# A metrics scrape, which is built from the same document.
t0=$(up)
ip netns exec bench-lvsd wget -q -O /tmp/metrics.txt http://127.0.0.1:9815/metrics 2>/tmp/metrics.err \
    && metrics_ok="$(wc -c < /tmp/metrics.txt) bytes" || metrics_ok="failed: $(tail -1 /tmp/metrics.err)"
t1=$(up); metrics_s=$(secs $t0 $t1)
kill -TERM $live; wait $live || true
echo "BENCH running director, first pass at start:      [$start_t]"
echo "BENCH running director, periodic no-change resync: [$periodic_t]"
echo "BENCH running director, one weight saved: [$live_t]"
echo "BENCH running director, lvsd status --json: ${status_s} s, ${status_ok}; lvsd events sent 0.5 s after it answered in ${events_s} s"
echo "BENCH running director, a metrics scrape: ${metrics_s} s, ${metrics_ok}"
l=$(ms "$(echo "$live_t" | grep -o 'read_ms=[0-9.]* write_ms=[0-9.]*')")
[ -n "$l" ] && [ -n "$a" ] && [ "$a" -gt 0 ] && echo "BENCH running one change / apply (kernel part): ${l} ms / ${a} ms = $(awk "BEGIN{printf \"%.4f\", $l / $a}")"
p=$(ms "$(echo "$periodic_t" | grep -o 'read_ms=[0-9.]* write_ms=[0-9.]*')")
[ -n "$p" ] && [ -n "$a" ] && [ "$a" -gt 0 ] && echo "BENCH running periodic resync / apply (kernel part): ${p} ms / ${a} ms = $(awk "BEGIN{printf \"%.3f\", $p / $a}")"
echo "$periodic_t" | grep -q ' applied=0' || fail "the periodic no-change resync wrote: $periodic_t"
echo "$live_t" | grep -q 'services=1 applied=1' || fail "the reload did not touch exactly one service: $live_t"

# One read of /proc/net/ip_vs, every service and real as text (what ipvsadm -L reads on old
# kernels): what a text pre-filter of the periodic resync would cost. The kernel hands out at
# most a page per read call, and at each call walks the services of every namespace from the
# first to where the last call stopped (ip_vs_info_seq_start, ip_vs_info_array). That walk
# counts this namespace's services only while the file position counts every namespace's, so
# with another namespace's table present the file leaves some of ours out: count them, then
# time the read with ipvsadm's table flushed. Five reads of 1 MiB calls, averaged.
listed=$(ip netns exec bench-lvsd sh -c "grep -vc '^  ->' /proc/net/ip_vs")
ip netns exec bench-ipvsadm ipvsadm -C
alone=$(ip netns exec bench-lvsd sh -c "grep -vc '^  ->' /proc/net/ip_vs")
proc_bytes=$(ip netns exec bench-lvsd sh -c 'wc -c < /proc/net/ip_vs')
proc_ms=$(ip netns exec bench-lvsd sh -c 'u() { cut -d" " -f1 /proc/uptime; }; t0=$(u)
    for i in 1 2 3 4 5; do dd if=/proc/net/ip_vs of=/dev/null bs=1M 2>/dev/null; done
    t1=$(u); awk "BEGIN{printf \"%.0f\", ($t1 - $t0) * 200}"')
ip netns exec bench-lvsd strace -c -e trace=read -o /tmp/proc-strace.txt dd if=/proc/net/ip_vs of=/dev/null bs=1M 2>/dev/null
proc_calls=$(awk '$NF == "read" {print $4}' /tmp/proc-strace.txt)
# Lines that are not a real's: two header lines (the third starts as a real's does), then services.
echo "BENCH /proc/net/ip_vs services listed: $((listed - 2)) of $N with ipvsadm's table in another namespace, $((alone - 2)) alone"
[ -n "$a" ] && [ "$a" -gt 0 ] && echo "BENCH read /proc/net/ip_vs once ($proc_bytes bytes, $proc_calls read calls) / apply (kernel part): ${proc_ms} ms / ${a} ms = $(awk "BEGIN{printf \"%.3f\", $proc_ms / $a}")"

# The same apply at lvsd's default log level (info), as a director starts: the log holds the
# first writes and a count; then with every write listed (LVSD_LOG=info,ipvs=debug), as the
# default was before. Each in a fresh namespace, on stderr to a file.
for log in info info,ipvs=debug; do
    ip netns add bench-lvsd-log
    ip netns exec bench-lvsd-log ip link set lo up
    t0=$(up)
    LVSD_LOG=$log ip netns exec bench-lvsd-log lvsd run $P --once > /dev/null 2>/tmp/once-log.txt \
        || { ip netns del bench-lvsd-log; tail -5 /tmp/once-log.txt; fail "lvsd run (LVSD_LOG=$log) failed"; }
    t1=$(up)
    ip netns del bench-lvsd-log
    echo "BENCH lvsd run --once (empty), LVSD_LOG=$log: $(secs $t0 $t1) s, $(wc -l < /tmp/once-log.txt) log lines"
done

if [ "${LVSD_BENCH_PROFILE:-0}" = 1 ]; then
    # Where a no-change pass spends its time: syscalls by count and time, and user vs system.
    LVSD_LOG=warn ip netns exec bench-lvsd strace -c -f -o /tmp/strace.txt lvsd run $P --once > /dev/null 2>&1 || true
    sed -n '1,14p' /tmp/strace.txt | sed 's/^/BENCH strace: /'
    grep total /tmp/strace.txt | sed 's/^/BENCH strace: /'
    LVSD_LOG=warn ip netns exec bench-lvsd sh -c "time lvsd run $P --once" > /dev/null 2>/tmp/time.txt || true
    tr '\n' ' ' < /tmp/time.txt | sed 's/^/BENCH time (no-change run --once): /'; echo
    LVSD_LOG=warn sh -c "time lvsd plan /tmp/bench.lua --node lvs01 $L" > /dev/null 2>/tmp/time.txt || true
    tr '\n' ' ' < /tmp/time.txt | sed 's/^/BENCH time (plan): /'; echo
fi
echo "$nochange_out" | grep -q ' 0 writes' || fail "no-change resync wrote"
echo "$change_out" | grep -q '1 applied, 0 failed, 1 writes' || fail "one change is not one write"
[ $identical = yes ] || { diff -u /tmp/ipvsadm-save.txt /tmp/lvsd-save.txt | head -20; fail "lvsd made another table than ipvsadm -R"; }
