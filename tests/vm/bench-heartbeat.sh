# Heartbeat benchmark in the guest (prints figures; not part of cargo test): benches/heartbeat.rs
# against the kernel's IPVS. Run it with `scripts/bench-heartbeat --vm`, which puts the
# benchmark program (heartbeat-bench) and the peer's lvsd (lvsd-peer) in /usr/bin and passes
# the arguments comma-separated in HB_ARGS.
peer=
[ -x /usr/bin/lvsd-peer ] && peer="--peer /usr/bin/lvsd-peer"
# Lines prefixed HB are what the host prints.
heartbeat-bench --bench --kernel --lvsd /usr/bin/lvsd $peer $(echo "$HB_ARGS" | tr , ' ') 2>&1 | sed 's/^/HB /'
