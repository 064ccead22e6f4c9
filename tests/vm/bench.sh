# IPVS benchmark (prints figures; not part of cargo test): 10,000 services x 4 reals applied
# to an empty table by `lvsd run --once` against `ipvsadm -R` loading the same table, then a
# no-change resync and a one-weight change. Run it with scripts/bench-ipvs.
set -e
up() { cut -d' ' -f1 /proc/uptime; }
secs() { awk "BEGIN{printf \"%.2f\", $2 - $1}"; }
# The same table as ipvsadm restore rules.
awk 'BEGIN{for(i=0;i<10000;i++){v=sprintf("192.0.2.%d:%d", i%250+1, 1000+int(i/250));
  printf "-A -t %s -s wrr\n", v; for(r=1;r<=4;r++) printf "-a -t %s -r 198.51.100.%d -g -w 1\n", v, r}}' > /tmp/rules
echo "bench: $(grep -c '^-A' /tmp/rules) services, $(grep -c '^-a' /tmp/rules) reals"

t0=$(up); ipvsadm -R < /tmp/rules; t1=$(up)
ipvsadm_s=$(secs $t0 $t1)
ipvsadm -S -n > /tmp/ipvsadm-save.txt
ipvsadm -C

P="-p tests/vm/bench.lua --node lvs01"
run() { LVSD_LOG=warn lvsd run "$@" --once > /tmp/once.out 2>/tmp/once.log || { cat /tmp/once.log; fail "lvsd run failed"; }; }
t0=$(up); run $P; t1=$(up)
lvsd_s=$(secs $t0 $t1)
apply_out=$(cat /tmp/once.out)
ipvsadm -S -n > /tmp/lvsd-save.txt
cmp -s /tmp/ipvsadm-save.txt /tmp/lvsd-save.txt && identical=yes || identical=NO
echo "BENCH ipvsadm -R (empty table):   ${ipvsadm_s} s"
echo "BENCH lvsd run --once (empty):    ${lvsd_s} s   [$apply_out]"
echo "BENCH ratio lvsd / ipvsadm -R:    $(awk "BEGIN{printf \"%.2f\", $lvsd_s / $ipvsadm_s}")x"
echo "BENCH same table as ipvsadm -R:   $identical"

t0=$(up); run $P; t1=$(up)
nochange_s=$(secs $t0 $t1); nochange_out=$(cat /tmp/once.out)
t0=$(up); run -p tests/vm/bench.lua --node changed; t1=$(up)
change_s=$(secs $t0 $t1); change_out=$(cat /tmp/once.out)
t0=$(up); lvsd plan tests/vm/bench.lua --node lvs01 > /dev/null; t1=$(up)
plan_s=$(secs $t0 $t1)

echo "BENCH   of which policy + plan:   ${plan_s} s (lvsd plan, no kernel)"
echo "BENCH no-change resync:           ${nochange_s} s   [$nochange_out]"
echo "BENCH one weight changed:         ${change_s} s   [$change_out]"
echo "$nochange_out" | grep -q ' 0 writes' || fail "no-change resync wrote"
echo "$change_out" | grep -q '1 applied, 0 failed, 1 writes' || fail "one change is not one write"
[ $identical = yes ] || { diff -u /tmp/ipvsadm-save.txt /tmp/lvsd-save.txt | head -20; fail "lvsd made another table than ipvsadm -R"; }
