#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# modules: ours stock
# kernels: all
# timeout: 1500
#
# Networks over VDUSE, all inside the guest (it has no network card):
#  - our tools/vduse-net serves a virtio-net device backed by a TAP
#    interface; virtio_net's interface sits in one network namespace, the
#    TAP in another; they ping each other over IPv6 link-local addresses
#    and pass a bulk TCP transfer (iperf3) both ways, with split and packed
#    rings; MAC and MTU come from the config space; kill -9 and a restart
#    with the reconnect log bring the link back;
#  - DPDK's testpmd is the device of two VDUSE net devices and forwards
#    between them; their two virtio-net interfaces, in two namespaces,
#    ping and pass bulk traffic through it.
. "$(dirname "$0")/lib.sh"
cd /tmp || exit 1

NET=vduse-net
NAME=
TPMD=

teardown() {
	[ -n "${NG:-}" ] && kill "$NG" 2>/dev/null
	ip netns del vn-a 2>/dev/null
	ip netns del vn-b 2>/dev/null
	[ -n "$NAME" ] && daemon_teardown $NET "$NAME"
	NAME=
	if [ -n "$TPMD" ]; then
		for d in tp-net0 tp-net1; do
			vdpa_exists $d && vdpa_del $d >/dev/null 2>&1
		done
		kill "$TPMD" 2>/dev/null
		wait_for 20 proc_gone "$TPMD"
		exec 7>&-
		TPMD=
	fi
}
NEED_TEARDOWN=teardown
trap teardown EXIT

check "vduse-net --help explains the options" \
	sh -c "$TOOLS/$NET --help | grep -q -- '--tap'"
for bad in "--name x --mtu 20" "--name x --mac 01:02:03" "--name x --bogus" \
	"--tap t0" "--name x --queue-size 3"; do
	# shellcheck disable=SC2086
	check "vduse-net $bad: refused with exit status 2 and a message" \
		sh -c "$TOOLS/$NET $bad 2>/tmp/err; rc=\$?; cat /tmp/err;
			test \$rc -eq 2 && test -s /tmp/err"
done

# netns_pair IF-A IF-B: IF-A into namespace vn-a as fe80::a, IF-B into vn-b
# as fe80::b, both up.
netns_pair() {
	ip netns add vn-a && ip netns add vn-b &&
		ip link set "$1" netns vn-a && ip link set "$2" netns vn-b &&
		ip -n vn-a addr add fe80::a/64 dev "$1" nodad &&
		ip -n vn-b addr add fe80::b/64 dev "$2" nodad &&
		ip -n vn-a link set "$1" up && ip -n vn-b link set "$2" up &&
		ip -n vn-a link set lo up && ip -n vn-b link set lo up
}
netns_clear() {
	ip netns del vn-a 2>/dev/null
	ip netns del vn-b 2>/dev/null
	wait_for 10 sh -c '! ip netns list | grep -q vn-'
}

# ping_ok IF-A COUNT: COUNT pings from vn-a to fe80::b, none lost.
ping_ok() {
	local out
	out=$(ip netns exec vn-a ping -6 -c "$2" -i 0.2 -W 3 "fe80::b%$1" 2>&1)
	echo "$out" | tail -n 2
	echo "$out" | grep -q " 0% packet loss"
}

# listening NS PORT: a TCP socket listens on PORT in namespace NS.
listening() {
	ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q .
}

# iperf_ok IF-A SECONDS [-R]: an iperf3 TCP run from vn-a to vn-b (or back)
# that completes and moves more than 1 MB; prints throughput and TCP
# retransmissions.
iperf_ok() {
	local ifa=$1 secs=$2 rev=${3:-} json rc srv
	json=$(mktemp /tmp/iperf-XXXXXX.json)
	ip netns exec vn-b iperf3 -s -1 -B fe80::b%"${IFB}" >/dev/null 2>&1 &
	srv=$!
	wait_for 30 listening vn-b 5201
	ip netns exec vn-a timeout 60 iperf3 -c "fe80::b%$ifa" -t "$secs" $rev \
		-J >"$json" 2>&1
	rc=$?
	wait $srv 2>/dev/null
	python3 - "$json" "$rc" <<'PYEOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    s = r["end"]["sum_sent"]
    v = r["end"]["sum_received"]
except Exception as e:
    print(f"no iperf3 report ({e}); exit {sys.argv[2]}")
    sys.exit(1)
print(f"received {v['bytes']} bytes, {v['bits_per_second']/1e6:.1f} Mbit/s, "
      f"{s.get('retransmits', '?')} TCP retransmissions")
sys.exit(0 if int(sys.argv[2]) == 0 and v["bytes"] > 1000000 else 1)
PYEOF
	rc=$?
	rm -f "$json"
	return $rc
}

# bulk_ok IF-A MIB [back]: MIB MiB of random data over one TCP connection
# from vn-a to vn-b (or back); passes when the receiver got every byte:
# same count, same SHA-256.
bulk_ok() {
	local ifa=$1 mib=$2 from=vn-a to=vn-b dst="fe80::b%$1" bind="fe80::b%$IFB"
	if [ "${3:-}" = back ]; then
		from=vn-b to=vn-a dst="fe80::a%$IFB" bind="fe80::a%$ifa"
	fi
	head -c $((mib * 1024 * 1024)) /dev/urandom >/tmp/bulk.src
	ip netns exec $to python3 -c '
import hashlib, socket, sys
host, scope = sys.argv[1].split("%")
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, 5301, 0, socket.if_nametoindex(scope)))
s.listen(1)
s.settimeout(60)
c, _ = s.accept()
c.settimeout(120)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
open("/tmp/bulk.rcv", "w").write(f"{n} {h.hexdigest()}\n")
' "$bind" &
	local srv=$!
	wait_for 30 listening $to 5301
	ip netns exec $from python3 -c '
import socket, sys
host, scope = sys.argv[1].split("%")
s = socket.socket(socket.AF_INET6)
s.settimeout(120)
s.connect((host, 5301, 0, socket.if_nametoindex(scope)))
s.sendall(open("/tmp/bulk.src", "rb").read())
s.close()
' "$dst" || { kill $srv 2>/dev/null; return 1; }
	wait $srv || return 1
	local want got
	want="$(stat -c %s /tmp/bulk.src) $(sha256sum </tmp/bulk.src | cut -d' ' -f1)"
	got=$(cat /tmp/bulk.rcv)
	echo "sent: $want"
	echo "received: $got"
	[ "$want" = "$got" ]
}

# net_case NAME TAP ARGS...: a vduse-net device end to end.
net_case() {
	local tap=$2 mac mtu
	NAME=$1
	shift 2
	daemon_start $NET "$NAME" --tap "$tap" "$@"
	need "$NAME ($*): vduse-net serves /dev/vduse/$NAME" daemon_ready $NET "$NAME"
	need "$NAME: the TAP interface $tap exists" ip link show "$tap"
	need "$NAME: vdpa dev add, bound to virtio_vdpa" vdpa_add "$NAME" virtio_vdpa
	need "$NAME: virtio_net made an interface of it" wait_for 30 vdpa_netdev "$NAME"
	IFA=$(vdpa_netdev "$NAME")
	IFB=$tap
	mac=$(cat "/sys/class/net/$IFA/address")
	mtu=$(cat "/sys/class/net/$IFA/mtu")
	echo "# $IFA: mac $mac mtu $mtu"
}

net_down() {
	local rc
	netns_clear
	check "$NAME: vdpa dev del" vdpa_del "$NAME"
	daemon_stop $NET "$NAME"
	rc=$?
	check "$NAME: vduse-net exits with status 0 on SIGTERM" test $rc -eq 0
	check "$NAME: /dev/vduse/$NAME is gone" \
		wait_for 10 sh -c "! test -e /dev/vduse/$NAME"
	NAME=
}

# Split ring, MAC and MTU from the command line.
net_case vn-split vtap0 --mac 02:11:22:33:44:55 --mtu 1400 --no-packed
check "vn-split: the interface has the MAC of the config space" \
	test "$(cat /sys/class/net/$IFA/address)" = 02:11:22:33:44:55
check "vn-split: and its MTU" test "$(cat /sys/class/net/$IFA/mtu)" -eq 1400
need "vn-split: the two ends go into namespaces vn-a and vn-b" netns_pair "$IFA" "$IFB"
check "vn-split: 20 pings across, none lost" ping_ok "$IFA" 20
check "vn-split: 32 MiB over TCP vn-a -> vn-b, every byte arrives" bulk_ok "$IFA" 32
check "vn-split: 32 MiB over TCP vn-b -> vn-a, every byte arrives" bulk_ok "$IFA" 32 back
check "vn-split: iperf3 TCP vn-a -> vn-b" iperf_ok "$IFA" 5
check "vn-split: iperf3 TCP vn-b -> vn-a" iperf_ok "$IFA" 5 -R
check "vn-split: pings of 1352 bytes (a full 1400-byte frame)" \
	sh -c "ip netns exec vn-a ping -6 -c 5 -i 0.2 -s 1352 -M do fe80::b%$IFA | grep -q ' 0% packet loss'"
net_down

# Packed ring, default MAC.
net_case vn-packed vtap1
check "vn-packed: packed ring negotiated" \
	bash -c "f=\$(cat /sys/bus/vdpa/devices/vn-packed/virtio*/features); test \"\${f:34:1}\" = 1"
check "vn-packed: a locally administered MAC by default" \
	sh -c "mac=\$(cat /sys/class/net/$IFA/address); test \$((0x\${mac%%:*} & 2)) -eq 2"
need "vn-packed: the two ends go into namespaces" netns_pair "$IFA" "$IFB"
check "vn-packed: 20 pings across, none lost" ping_ok "$IFA" 20
check "vn-packed: 32 MiB over TCP vn-a -> vn-b, every byte arrives" bulk_ok "$IFA" 32
check "vn-packed: 32 MiB over TCP vn-b -> vn-a, every byte arrives" bulk_ok "$IFA" 32 back
check "vn-packed: iperf3 TCP vn-a -> vn-b" iperf_ok "$IFA" 5
net_down

# A restart with the reconnect log (split ring: the log needs one).
LOG=/tmp/vn-recon.log
rm -f $LOG
net_case vn-recon vtap2 --reconnect-log $LOG
need "vn-recon: the two ends go into namespaces" netns_pair "$IFA" "$IFB"
check "vn-recon: 10 pings across, none lost" ping_ok "$IFA" 10
daemon_stop $NET vn-recon KILL
rc=$?
check "vn-recon: vduse-net died of SIGKILL" test $rc -eq 137
check "vn-recon: the virtio-net interface stays" ip -n vn-a link show "$IFA"
# The TAP went away with the daemon; the new one must go back into vn-b.
daemon_start $NET vn-recon --tap vtap2 --reconnect-log $LOG
need "vn-recon: a new vduse-net takes the device back" daemon_ready $NET vn-recon
check "vn-recon: it re-attached to the existing device" \
	grep -q 're-attached to the existing device' /tmp/vduse-net-vn-recon.log
need "vn-recon: its TAP goes into vn-b again" \
	sh -c "ip link set vtap2 netns vn-b && ip -n vn-b addr add fe80::b/64 dev vtap2 nodad &&
		ip -n vn-b link set vtap2 up"
# (the first packets after the gap may go to neighbour discovery)
check "vn-recon: after the restart a ping gets through" \
	wait_for 30 ip netns exec vn-a ping -6 -c 1 -W 1 "fe80::b%$IFA"
check "vn-recon: then 20 pings across, none lost" ping_ok "$IFA" 20
check "vn-recon: and 16 MiB over TCP, every byte" bulk_ok "$IFA" 16
net_down

# ---------------------------------------------------------------------------
# DPDK testpmd as the device of two VDUSE net devices (our module, or the
# stock one: the same test).
rm -f /tmp/tp.in
mkfifo /tmp/tp.in
dpdk-testpmd --no-huge -m 1024 --no-pci \
	--vdev 'net_vhost0,iface=/dev/vduse/tp-net0,queues=1' \
	--vdev 'net_vhost1,iface=/dev/vduse/tp-net1,queues=1' -- \
	--forward-mode=io --auto-start --nb-cores=1 --total-num-mbufs=16384 \
	</tmp/tp.in >/tmp/tp.log 2>&1 &
TPMD=$!
exec 7>/tmp/tp.in
need "testpmd creates /dev/vduse/tp-net0 and tp-net1" \
	wait_for 90 sh -c "test -e /dev/vduse/tp-net0 && test -e /dev/vduse/tp-net1"
need "tp-net0: vdpa dev add" vdpa_add tp-net0 virtio_vdpa
need "tp-net1: vdpa dev add" vdpa_add tp-net1 virtio_vdpa
need "both got a virtio-net interface" \
	wait_for 30 sh -c "ls /sys/bus/vdpa/devices/tp-net1/virtio*/net/ >/dev/null 2>&1"
IFA=$(vdpa_netdev tp-net0)
IFB=$(vdpa_netdev tp-net1)
need "the two interfaces go into namespaces vn-a and vn-b" netns_pair "$IFA" "$IFB"
check "testpmd: 20 pings across, none lost" \
	bash -c "sleep 2; $(declare -f ping_ok); ping_ok $IFA 20"
check "testpmd: 32 MiB over TCP through DPDK, every byte arrives" bulk_ok "$IFA" 32
check "testpmd: iperf3 TCP through DPDK" iperf_ok "$IFA" 5
netns_clear
check "tp-net0: vdpa dev del" vdpa_del tp-net0
check "tp-net1: vdpa dev del" vdpa_del tp-net1
kill "$TPMD"
check "testpmd exits on SIGTERM" wait_for 30 proc_gone "$TPMD"
exec 7>&-
TPMD=
check "testpmd's devices are gone" \
	sh -c "! test -e /dev/vduse/tp-net0 && ! test -e /dev/vduse/tp-net1"


# A daemon's inputs that take virtio_net down with the stock module (issue
# 7): VIRTIO_NET_S_ANNOUNCE in the status field (virtio_net acknowledges
# it on a control queue VDUSE never has: BUG_ON) and rings shorter than a
# big-packets buffer without indirect descriptors (a virtio core WARN).
# Ours clears the bit on the way to the driver and refuses such rings at
# "vdpa dev add"; the stock module is only run on the harmless variants.
NG=
ng_start() {	# ng_start NAME ARGS...: vduse_netguard in the background
	local name=$1
	shift
	"$TOOLS/vduse_netguard" --name "$name" "$@" >/tmp/ng.log 2>&1 &
	NG=$!
	wait_for 10 test -e "/dev/vduse/$name"
}
# ng_stop NAME: delete the vDPA device, stop the daemon (in this shell:
# it is our child); NG_RC gets its exit status.
ng_stop() {
	vdpa_exists "$1" && vdpa_del "$1" >/dev/null 2>&1
	NG_RC=1
	if [ -n "$NG" ] && kill "$NG" 2>/dev/null; then
		wait "$NG"
		NG_RC=$?
	fi
	NG=
}
# ng_gone NAME: the daemon exited 0 and the device is gone.
ng_gone() { test "$NG_RC" -eq 0 && ! test -e "/dev/vduse/$1"; }
# ng_add_unbound NAME: vdpa dev add with no driver probing it yet.
ng_add_unbound() {
	local auto rc
	auto=$(cat /sys/bus/vdpa/drivers_autoprobe)
	echo 0 >/sys/bus/vdpa/drivers_autoprobe
	timeout 90 vdpa dev add name "$1" mgmtdev vduse
	rc=$?
	echo "$auto" >/sys/bus/vdpa/drivers_autoprobe
	return $rc
}
# ng_shrink: SIGUSR1 to the daemon, which shrinks its rings.
ng_shrink() {
	kill -USR1 "$NG" && wait_for 10 grep -q '^shrunk' /tmp/ng.log
}
# ng_bind NAME: bind virtio_vdpa and see a net interface appear.
ng_bind() {
	echo virtio_vdpa >"/sys/bus/vdpa/devices/$1/driver_override" &&
		echo "$1" >/sys/bus/vdpa/drivers_probe 2>/dev/null
	wait_for 10 vdpa_netdev "$1"
}
ng_up() {	# ng_up NAME: the interface of NAME comes up and stays up
	local ifc
	wait_for 20 vdpa_netdev "$1" || return 1
	ifc=$(vdpa_netdev "$1")
	ip link set dev "$ifc" up && sleep 2 &&
		ip link show dev "$ifc" | grep -q 'state UP\|LOWER_UP'
}

IND="8-entry net rings with indirect descriptors"
if ng_start ng-ind --ring 8 --indirect; then
	check "$IND: vdpa dev add" vdpa_add ng-ind virtio_vdpa
	check "$IND: the interface comes up" ng_up ng-ind
	ng_stop ng-ind
	check "$IND: the daemon destroys it" ng_gone ng-ind
else
	fail "vduse_netguard creates ng-ind"
	ng_stop ng-ind
fi
if [ "${VM_MODULE:-ours}" = ours ]; then
	SMALL="8-entry net rings without indirect descriptors"
	if ng_start ng-small --ring 8; then
		check_fails "$SMALL: vdpa dev add refused" \
			vdpa_add ng-small virtio_vdpa
		check "$SMALL: the kernel log says why" \
			sh -c "dmesg | tail -n 20 | grep -q 'needs at least'"
		ng_stop ng-small
		check "$SMALL: the daemon destroys it" ng_gone ng-small
	else
		fail "vduse_netguard creates ng-small"
		ng_stop ng-small
	fi
	SHR="256-entry net rings shrunk to 8 after vdpa dev add"
	if ng_start ng-shr --shrink 8; then
		check "$SHR: vdpa dev add, not bound yet" ng_add_unbound ng-shr
		check "$SHR: the daemon shrinks them (VQ_SETUP)" ng_shrink
		check_fails "$SHR: virtio_net cannot bind: no usable ring size" \
			ng_bind ng-shr
		ng_stop ng-shr
		check "$SHR: the daemon destroys it" ng_gone ng-shr
	else
		fail "vduse_netguard creates ng-shr"
		ng_stop ng-shr
	fi
	ANN="VIRTIO_NET_S_ANNOUNCE in the status"
	if ng_start ng-ann --announce; then
		check "$ANN: vdpa dev add" vdpa_add ng-ann virtio_vdpa
		check "$ANN: the interface comes up under config interrupts, the guest stays up" \
			ng_up ng-ann
		ng_stop ng-ann
		check "$ANN: the daemon destroys it" ng_gone ng-ann
	else
		fail "vduse_netguard creates ng-ann"
		ng_stop ng-ann
	fi
else
	echo "# skip - net rings of 8 entries without indirect descriptors:" \
		"the stock module attaches them, and virtio_net's receive" \
		"buffers make the virtio core warn (ours refuses them)"
	echo "# skip - VIRTIO_NET_S_ANNOUNCE from the daemon: the stock" \
		"module passes it to virtio_net, which hits BUG_ON (ours clears it)"
fi

finish
