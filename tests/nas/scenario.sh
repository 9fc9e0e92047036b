# The real-NAS scenario, run by the guest's /bin/sh (the host's dash, chrooted over 9p).
# $WORK holds radiusclient.conf, server.options and clients.txt ("user unit method password"
# per line; method: pap, chap, mschapv2, mppe). Results are the logs written back to $WORK.
set -u
WORK=$(dirname "$0")
say() { echo "scenario: $*"; }

mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/lock /run/netns
mount -t tmpfs tmpfs /etc/ppp        # the host's /etc/ppp/options ("auth", "lock") stays out
: > /etc/ppp/options
hostname localhost                   # radius.so resolves it for NAS-IP-Address

# Uplink to the agent: QEMU user networking, the host's loopback is 10.0.2.2.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

# The access networks: two servers, "access0" (any method) and "access1" (MPPE-128
# required, as an encrypting concentrator is set up), the customers' side in namespace "cpe".
ip netns add cpe
ip netns exec cpe ip link set lo up
for n in 0 1; do
    ip link add "access$n" type veth peer name "cpe$n"
    ip link set "cpe$n" netns cpe
    ip link set "access$n" up
    ip netns exec cpe ip link set "cpe$n" up
done

say "starting pppoe-server"
pppoe-server -I access0 -L 10.67.0.1 -R 10.67.0.100 -N 32 -O "$WORK/server.options" \
    -X /run/pppoe-server0.pid
pppoe-server -I access1 -L 10.68.0.1 -R 10.68.0.100 -N 32 -O "$WORK/server-mppe.options" \
    -X /run/pppoe-server1.pid
sleep 1

pids=""
while read -r user unit method password; do
    case $method in
        pap) opts="refuse-chap refuse-mschap refuse-mschap-v2" ;;
        chap) opts="refuse-pap refuse-mschap refuse-mschap-v2" ;;
        mschapv2) opts="refuse-pap refuse-chap refuse-mschap" ;;
        mppe) opts="refuse-pap refuse-chap refuse-mschap require-mppe-128" ;;
    esac
    nic=cpe0
    [ "$method" = mppe ] && nic=cpe1
    # shellcheck disable=SC2086
    ip netns exec cpe pppd plugin pppoe.so "nic-$nic" user "$user" password "$password" \
        unit "$unit" noauth nodetach maxfail 1 noipdefault nodefaultroute refuse-eap \
        lcp-echo-interval 0 debug logfile "$WORK/client-$unit.log" $opts \
        > /dev/null 2>&1 &
    pids="$pids $!:$unit"
    say "client $user (ppp$unit, $method) started as pid $!"
done < "$WORK/clients.txt"

# Wait until every client is up (has its address) or gone (refused), at most 120 s.
i=0
while [ $i -lt 240 ]; do
    pending=0
    for pu in $pids; do
        pid=${pu%%:*}
        unit=${pu##*:}
        if kill -0 "$pid" 2>/dev/null; then
            grep -q "local  IP address" "$WORK/client-$unit.log" 2>/dev/null || pending=1
        fi
    done
    [ $pending = 0 ] && break
    sleep 0.5
    i=$((i + 1))
done
say "clients settled after $((i / 2)) s"

# Some traffic on every session, for the octet counters.
while read -r user unit method password; do
    if ip netns exec cpe ip link show "ppp$unit" > /dev/null 2>&1; then
        ip netns exec cpe ip -4 addr show "ppp$unit" > "$WORK/addr-$unit.txt"
        server=10.67.0.1
        [ "$method" = mppe ] && server=10.68.0.1
        ip netns exec cpe busybox ping -c 3 -W 2 -I "ppp$unit" "$server" \
            > "$WORK/ping-$unit.txt" 2>&1 && say "ppp$unit ($user) ping ok"
    fi
done < "$WORK/clients.txt"

say "hanging up"
for pu in $pids; do kill "${pu%%:*}" 2>/dev/null; done
for pu in $pids; do
    pid=${pu%%:*}
    n=0
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 60 ]; do sleep 0.5; n=$((n + 1)); done
done
# The server's pppd processes send Accounting-Stop as their sessions end.
n=0
while pgrep -x pppd > /dev/null && [ $n -lt 60 ]; do sleep 0.5; n=$((n + 1)); done
kill "$(cat /run/pppoe-server0.pid)" "$(cat /run/pppoe-server1.pid)" 2>/dev/null
say "done"
