# lvsd lab in DR mode, every scenario, with its claims verified (exit 1 if one fails).
lvsd lab --mode dr --verify --requests 4000
