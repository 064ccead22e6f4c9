# lvsd lab, DR mode, with long-lived connections (HTTP keep-alive, a request every 100 ms on
# each) and the kernel's connection sync daemon: every connection open at a fault survives
# SIGKILL of the master, a graceful stop, link down, and each return of the master with
# sync-aware preemption (--verify); before each fault the backup's `ipvsadm -L -n -c` lists
# the master's connections. Then the same kill without the sync daemon: connections break,
# so the daemon is what saves them.
lvsd lab --mode dr --scenario failover --verify --requests 3000 --long-lived 12 > /tmp/sync.txt 2>&1
rc=$?
cat /tmp/sync.txt
[ $rc = 0 ] || fail "lab with the sync daemon: rc $rc"
n=$(grep -c '^\[.*lvs02 (backup): ipvsadm -L -n -c lists [1-9][0-9]* ESTABLISHED' /tmp/sync.txt)
[ "$n" = 3 ] || fail "the backup's ipvsadm -L -n -c did not list the connections before each of the 3 faults ($n)"
lvsd lab --mode dr --scenario kill --no-sync --requests 1500 --long-lived 12 > /tmp/nosync.txt 2>&1 || fail "lab --no-sync"
cat /tmp/nosync.txt
broken=$(awk '/^Long-lived/ { f = 1 } f && $1 == "kill" { print $4 }' /tmp/nosync.txt)
[ -n "$broken" ] && [ "$broken" -gt 0 ] || fail "without the sync daemon no connection broke at the kill ($broken)"
echo "lab-sync: ok"
