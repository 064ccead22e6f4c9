# The production simulation: `lvsd lab` with the options it was given on the host, spelt
# out in full (scripts/vm passes them as LVSD_LAB_ARGS; see src/lab/vm.rs), so the guest
# checks exactly what a host with IPVS would. Without them, `lvsd lab`'s own defaults.
args=$(cat /lvsd/lab-args 2>/dev/null)
lvsd lab $args
