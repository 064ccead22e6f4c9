# lab-sync in NAT mode: long-lived connections survive kill, stop, link down and the returns
# with the sync daemon (--verify); the reals' gateway VIP moves with the pair (sync group).
lvsd lab --mode nat --scenario failover --verify --requests 3000 --long-lived 12 || fail "lab NAT with the sync daemon"
echo "lab-sync-nat: ok"
