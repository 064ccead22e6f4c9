# The production simulation: `lvsd lab` with the arguments it was started with on the host
# (scripts/vm passes them as LVSD_LAB_ARGS), by default DR mode with verification.
args=$(cat /lvsd/lab-args 2>/dev/null)
[ -n "$args" ] || args="--mode dr --verify"
lvsd lab $args
