# lvsd lab in DR mode, every scenario, with its claims verified (exit 1 if one fails); before
# each of the three faults (kill, stop, link down) the backup's `ipvsadm -L -n -c` lists the
# master's connections: the kernel's sync daemon copied them.
lvsd lab --mode dr --verify --requests 4000 > /tmp/lab-dr.txt 2>&1
rc=$?
cat /tmp/lab-dr.txt
[ $rc = 0 ] || fail "lab in DR mode: rc $rc"
n=$(grep -c '^\[.*lvs02 (backup): ipvsadm -L -n -c lists [1-9][0-9]* ESTABLISHED' /tmp/lab-dr.txt)
[ "$n" = 3 ] || fail "the backup's ipvsadm -L -n -c did not list the connections before each of the 3 faults ($n)"
