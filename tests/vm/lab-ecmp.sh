# lvsd lab --topology ecmp: a BIRD router's ECMP route (L4 hash) over three directors, each
# running BIRD and lvsd (mh, DR, the sync daemon on every director), with short requests and
# long-lived connections from a client behind the router. Phases: baseline (two directors),
# add (the third joins: its sync daemons learn the others' connections), drain-director,
# undrain, a director dies (link down, lvsd and BIRD killed: the router's hold timer
# detects), it returns, a real server dies, SIGTERM to a director's lvsd. --verify checks
# that every director takes traffic, that the add fails no request, breaks no connection and
# the new director learns the others' connections, that drain and undrain fail no request and break no
# connection, that the kill breaks no established connection and fails only requests sent
# before the router's route changed, that the return breaks none, and that SIGTERM withdraws
# the VIP and fails no request, and that the router's route changes only at the faults.
# Needs BIRD in the guest:
#   scripts/vm --extra /usr/sbin/bird --extra /usr/sbin/birdc lab-ecmp
# --env LAB_ECMP_SCHEDULER=wlc: the same run with wlc (the claims that need the consistent
# hash are then reported, not checked); --env LAB_ECMP_NO_SYNC=1: without the sync daemon;
# --env LAB_ECMP_DETECT=bfd: BFD detects the kill (under emulation the guest can stall for
# longer than BFD's 1.5 s, so the test runs on the hold timer).
lvsd lab --topology ecmp --directors 3 --verify --requests 4000 --long-lived 8 --detect "${LAB_ECMP_DETECT:-hold}" \
    ${LAB_ECMP_SCHEDULER:+--scheduler "$LAB_ECMP_SCHEDULER"} ${LAB_ECMP_NO_SYNC:+--no-sync} > /tmp/ecmp.txt 2>&1
rc=$?
cat /tmp/ecmp.txt
[ $rc = 0 ] || fail "lvsd lab --topology ecmp --verify: rc $rc"
echo "lab-ecmp: ok"
