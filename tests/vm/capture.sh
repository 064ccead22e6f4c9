# Capture what ipvsadm sends to the kernel (and what the kernel answers) for each command,
# as strace hex dumps under $LVSD_OUT/capture/NN-name.strace. Not a test: it makes fixtures.
set -e
mkdir -p $LVSD_OUT/capture
n=0
cap() {
    name=$1; shift
    n=$((n+1))
    f=$LVSD_OUT/capture/$(printf %02d $n)-$name.strace
    echo "# ipvsadm $*" > $f
    strace -qq -xx -e trace=sendmsg,recvmsg,sendto,recvfrom -e write=all -e read=all -o $f.tmp ipvsadm "$@" > ${f%.strace}.out
    cat $f.tmp >> $f; rm $f.tmp
    # Keep what ipvsadm printed (the formatter is tested against it) when it printed anything.
    [ -s ${f%.strace}.out ] || rm ${f%.strace}.out
}
ip link add dummy0 type dummy
ip link set dummy0 up
ip addr add 192.0.2.250/24 dev dummy0
cap svc-new-v4-persistent -A -t 192.0.2.1:80 -s wrr -p 50
cap svc-set-v4 -E -t 192.0.2.1:80 -s rr -p 120 -M 255.255.255.0
cap svc-new-v6-udp-schedflags -A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port
cap svc-new-fwmark-v4 -A -f 7 -s wlc -p 300 -M 255.255.255.0
cap svc-new-fwmark-v6 -A -f 8 -6 -s mh -b mh-port -p 60 -M 64
cap svc-new-v4-pe-sip -A -u 192.0.2.2:5060 -s rr -p 60 --pe sip
cap svc-new-v4-ops -A -u 192.0.2.3:53 -s rr -o
cap svc-new-sctp -A --sctp-service 192.0.2.4:9 -s lc
cap dest-new-dr-thresholds -a -t 192.0.2.1:80 -r 198.51.100.1:80 -g -w 5 -x 100 -y 10
cap dest-new-nat -a -t 192.0.2.1:80 -r 198.51.100.2:8080 -m -w 1
cap dest-new-tun-gue -a -t 192.0.2.1:80 -r 198.51.100.3:80 -i --tun-type gue --tun-port 6080 --tun-remcsum
cap dest-new-tun-gre -a -t 192.0.2.1:80 -r 198.51.100.4:80 -i --tun-type gre --tun-csum
cap dest-new-v6 -a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -g -w 2
cap dest-new-fwmark -a -f 7 -r 198.51.100.5:0 -g -w 3
cap dest-set -e -t 192.0.2.1:80 -r 198.51.100.1:80 -g -w 7
cap list -L -n
cap list-stats -L -n --stats
cap list-rate -L -n --rate
cap dest-del -d -t 192.0.2.1:80 -r 198.51.100.2:8080
cap timeout-get -L --timeout
cap timeout-set --set 900 120 300
cap daemon-start-master --start-daemon master --mcast-interface dummy0 --syncid 5
cap daemon-start-backup --start-daemon backup --mcast-interface dummy0 --syncid 5
cap daemon-list -L --daemon
cap daemon-stop-master --stop-daemon master
cap daemon-stop-backup --stop-daemon backup
cap zero-all -Z
cap zero-svc -Z -t 192.0.2.1:80
cap svc-del -D -t 192.0.2.1:80
cap flush -C
ls $LVSD_OUT/capture
