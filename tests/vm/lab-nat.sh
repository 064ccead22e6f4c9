# lvsd lab in NAT mode, every scenario, with its claims verified (exit 1 if one fails).
lvsd lab --mode nat --verify --requests 4000
