# `lvsd status --kernel` must print exactly what ipvsadm prints, for a table that uses
# every scheduler, flag, forwarding method and address kind the kernel has.
set -e
[ -n "$LVSD_VM_TRACE" ] && set -x
i=0
for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos; do
    i=$((i+1))
    ipvsadm -A -t 192.0.2.$i:80 -s $s 2>/dev/null || { echo "scheduler $s not available"; continue; }
    ipvsadm -a -t 192.0.2.$i:80 -r 198.51.100.$i:80 -g -w $i
    ipvsadm -a -t 192.0.2.$i:80 -r 198.51.100.$((i+100)):8080 -m -w 0 -x 50 -y 5
done
ipvsadm -A -t 203.0.113.1:443 -s wlc -p 300 -M 255.255.255.0
ipvsadm -a -t 203.0.113.1:443 -r 198.51.100.200:443 -i -w 3
ipvsadm -a -t 203.0.113.1:443 -r 198.51.100.201:443 -i --tun-type gue --tun-port 6080 --tun-csum -w 2
ipvsadm -a -t 203.0.113.1:443 -r 198.51.100.202:443 -i --tun-type gre --tun-nocsum -w 65535
ipvsadm -A -u 203.0.113.2:53 -s sh -b sh-fallback,sh-port -o
ipvsadm -a -u 203.0.113.2:53 -r 198.51.100.53:53 -g
ipvsadm -A -u 203.0.113.3:5060 -s rr -p 60 --pe sip
ipvsadm -A -u [2001:db8::1]:53 -s mh -b mh-fallback
ipvsadm -a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -g -w 2
ipvsadm -a -u [2001:db8::1]:53 -r [2001:db8:ffff::1]:5353 -m -w 1
ipvsadm -A -t [2001:db8::2]:80 -s wrr -p 30 -M 64
ipvsadm -A -f 1 -s rr
ipvsadm -a -f 1 -r 198.51.100.9:0 -g
ipvsadm -A -f 2 -6 -s lc -p 120 -M 96
ipvsadm -a -f 2 -6 -r [2001:db8::9]:0 -g
ipvsadm -A --sctp-service 192.0.2.200:9 -s rr
ipvsadm -A -t 192.0.2.250:0 -s rr -p 10
# Sort order: addresses whose difference overflows an int, ports, protocols.
ipvsadm -A -t 203.0.113.250:1 -s rr
ipvsadm -A -t 192.0.2.251:65535 -s rr
ipvsadm -A -u 192.0.2.1:80 -s rr
ipvsadm -a -u 192.0.2.1:80 -r 203.0.113.77:80 -g
ipvsadm -a -u 192.0.2.1:80 -r 198.51.100.77:80 -g
ipvsadm -a -u 192.0.2.1:80 -r 198.51.100.77:79 -m
rc=0
for opt in "" "--stats" "--rate"; do
    ipvsadm -L -n $opt > /tmp/ipvsadm.txt
    lvsd status --kernel $opt > /tmp/lvsd.txt
    if cmp -s /tmp/ipvsadm.txt /tmp/lvsd.txt; then
        echo "status --kernel $opt: identical ($(wc -l < /tmp/ipvsadm.txt) lines)"
    else
        echo "FAIL: status --kernel $opt differs from ipvsadm -L -n $opt"
        diff -u /tmp/ipvsadm.txt /tmp/lvsd.txt || true
        rc=1
    fi
done
lvsd status --kernel --json > /tmp/status.json
grep -q '"conn_tab_size"' /tmp/status.json || { echo "FAIL: json"; rc=1; }
[ -n "$LVSD_VM_SHOW" ] && cat /tmp/ipvsadm.txt
exit $rc
