# lvsd lab, DR mode, SIGKILL of the master without the kernel's connection sync daemon: the
# long-lived connections (HTTP keep-alive, a request every 100 ms on each) break, where the
# lab-dr scenario (sync on, the default) shows every one surviving each fault: the daemon is
# what saves them.
lvsd lab --mode dr --scenario kill --no-sync --requests 1500 --long-lived 12 > /tmp/nosync.txt 2>&1 || fail "lab --no-sync"
cat /tmp/nosync.txt
broken=$(awk '/^Long-lived/ { f = 1 } f && $1 == "kill" { print $4 }' /tmp/nosync.txt)
[ -n "$broken" ] && [ "$broken" -gt 0 ] || fail "without the sync daemon no connection broke at the kill ($broken)"
echo "lab-sync: ok"
