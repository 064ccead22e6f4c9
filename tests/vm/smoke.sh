# Smoke: IPVS is there, ipvsadm works, lvsd runs.
set -e
ipvsadm -A -t 192.0.2.1:80 -s rr
ipvsadm -a -t 192.0.2.1:80 -r 198.51.100.1:80 -g -w 3
ipvsadm -L -n
lvsd --help >/dev/null 2>&1 || true
ipvsadm -C
