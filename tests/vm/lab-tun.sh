# lvsd lab in TUN mode, every scenario, with its claims verified (exit 1 if one fails).
lvsd lab --mode tun --verify --requests 4000
