# Sourced before every guest scenario (busybox sh, inside a fresh network namespace).
# Debian's static busybox prefers its own applets over PATH: use iproute2 explicitly.
ip() { /sbin/ip.real "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
# Compare two files, show a diff when they differ.
same() { cmp -s "$1" "$2" || { echo "FAIL: $1 and $2 differ:"; diff -u "$1" "$2"; exit 1; }; }
