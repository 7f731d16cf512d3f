#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# An array across hosts: network namespaces as hosts, veth pairs on one bridge (in a
# namespace of its own, so nothing outside is touched), addresses only inside them. Hosts
# h1, h2 and h4 each run `uraid serve` exporting one file-backed member over TCP; h3 serves its
# member through nbdkit with the delay (2 ms a request) and error filters; h4 requires TLS
# (a pre-shared key the head has, and a client without it is refused). The head runs a
# raid6 over the four remote members and two local ones, with a write-intent bitmap, and
# exports it on a Unix socket, where fio (nbd engine, crc32c verify) writes and reads. Then:
# h1's link goes down mid-run (its member fails on the timeout, verify stays clean) and comes
# back (the member catches up on the regions written meanwhile only); h2's server is killed
# with SIGKILL and started again (a reboot); h3 returns a burst of errors; last, a local
# member fails and everything written verifies from the remote ones. Needs root and `ip
# netns`; skipped with the reason otherwise. Everything is removed on exit.
. "$(dirname "$0")/../func/lib.sh"

ID=$(($$ % 100000))
NET=10.213.$(($$ % 200 + 20))
SW=ursw$ID
HOSTS=(h1 h2 h3 h4)
SOCK=$T_DIR/head.sock
declare -A SPID

ns() { echo "ur${ID}$1"; }
cleanup() {
	stop_daemon
	for h in "${!SPID[@]}"; do
		kill -CONT "${SPID[$h]}" 2>/dev/null
		kill -TERM "${SPID[$h]}" 2>/dev/null
		wait "${SPID[$h]}" 2>/dev/null
	done
	netns_del "$SW" "ur$ID" head "${HOSTS[@]}"
	t_cleanup
}

if [ "$(id -u)" -ne 0 ]; then
	t_skip "hosts in network namespaces" "needs root (ip netns)"
	t_done
	exit
fi
if ! ip netns add "$SW" 2>/dev/null; then
	t_skip "hosts in network namespaces" "ip netns is not available here"
	t_done
	exit
fi
trap cleanup EXIT
need_tools fio nbdkit

# --- the network: a bridge in the switch namespace, one veth pair per host ---
netns_hosts "$SW" "ur$ID" "$NET" head "${HOSTS[@]}"
addr() { # HOST -> its address
	case $1 in head) echo "$NET.1" ;; h1) echo "$NET.2" ;; h2) echo "$NET.3" ;;
	h3) echo "$NET.4" ;; h4) echo "$NET.5" ;; esac
}
# --- the storage hosts ---
start_host() { # HOST
	local h=$1 n
	n=$(ns "$h")
	if [ "$h" = h3 ]; then
		[ -f "$T_DIR/$h.img" ] || truncate -s 32M "$T_DIR/$h.img"
		ip netns exec "$n" nbdkit -f -i "$(addr "$h")" -p 10809 --filter=error \
			--filter=delay file "$T_DIR/$h.img" delay-read=2ms delay-write=2ms \
			error=EIO error-rate=100% error-file="$T_DIR/h3.errors" \
			>>"$T_DIR/$h.log" 2>&1 &
		SPID[$h]=$!
		return
	fi
	t_cfg "$T_DIR/$h.json" \
		"{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"D\",\"filename\":\"$T_DIR/$h.img\",\"size_mb\":32}}"
	local tls=()
	[ "$h" = h4 ] && tls=(--tls-psk "$T_DIR/keys.psk" --tls-require)
	ip netns exec "$n" "$URAID" serve --config "$T_DIR/$h.json" --rpc-socket "$T_DIR/$h.sock" \
		--reactors 1 "${tls[@]}" >>"$T_DIR/$h.log" 2>&1 &
	SPID[$h]=$!
	wait_rpc "$T_DIR/$h.sock"
	# (After a restart the kept config has the export already.)
	"$URAID" export -s "$T_DIR/$h.sock" D "$(addr "$h"):10809" >/dev/null 2>&1
}
# h4 requires TLS (pre-shared key): the head has the key, nobody else does.
printf 'head:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T_DIR/keys.psk"
for h in "${HOSTS[@]}"; do start_host "$h"; done
reach() { ip netns exec "$(ns head)" timeout 3 bash -c "exec 3<>/dev/tcp/$(addr "$1")/10809"; }
for _ in $(seq 30); do reach h4 && break; sleep 0.1; done
if reach h1 && reach h4; then
	t_pass "the head reaches the hosts' exports over the bridge"
else
	t_fail "the head reaches the hosts' exports over the bridge" "$(addr h1), $(addr h4)"
fi

# --- the head ---
ram() { echo "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"$1\",\"num_blocks\":8192,\"block_size\":4096}}"; }
cfg=("$(ram l0)" "$(ram l1)")
for h in "${HOSTS[@]}"; do
	uri="nbd://$(addr "$h"):10809/D"
	[ "$h" = h3 ] && uri="nbd://$(addr "$h"):10809/"
	[ "$h" = h4 ] && uri="nbds://head@$(addr "$h"):10809/D?tls-psk-file=$T_DIR/keys.psk"
	cfg+=("{\"method\":\"bdev_nbd_attach\",\"params\":{\"name\":\"n$h\",\"uri\":\"$uri\",\"connections\":2,\"timeout_ms\":1500,\"reconnect_delay_ms\":300}}")
done
cfg+=("{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"a6\",\"raid_level\":\"raid6\",\"strip_size_kb\":64,\"base_bdevs\":[\"l0\",\"l1\",\"nh1\",\"nh2\",\"nh3\",\"nh4\"],\"superblock\":true,\"consistency_policy\":\"bitmap\",\"bitmap_region_kb\":1024}}")
t_cfg "$T_DIR/head.json" "${cfg[@]}"
# start_daemon, inside the head's namespace
ip netns exec "$(ns head)" "$URAID" serve --config "$T_DIR/head.json" --rpc-socket "$SOCK" \
	--reactors 2 >>"$T_DIR/serve.log" 2>&1 &
PID=$!
wait_rpc "$SOCK"
check "the head attaches four remote members (h4 over TLS) and builds raid6 over them" 0 \
	'6 of 6 members' "$URAID" status -s "$SOCK" a6
check "h4 requires TLS: a client without the key is refused" 1 "cannot attach 'x4': .*requires TLS" \
	"$URAID" rpc -s "$SOCK" bdev_nbd_attach \
	"{\"name\":\"x4\",\"uri\":\"nbd://$(addr h4):10809/D\",\"timeout_ms\":2000}"
"$URAID" export -s "$SOCK" a6 "$T_DIR/a6.nbd" >/dev/null
A6="nbd+unix:///a6?socket=$T_DIR/a6.nbd"
fio_a6() { # NAME OFFSET SIZE [FIO OPTIONS...]
	local name=$1 off=$2 size=$3 rc
	shift 3
	fio --name="$name" --ioengine=nbd --uri="$A6" --bs=4k --iodepth=16 --offset="$off" \
		--size="$size" --verify=crc32c --verify_fatal=1 --verify_state_save=0 --randseed=11 "$@" \
		>"$T_DIR/fio-$name.log" 2>&1
	rc=$?
	cat "$T_DIR/fio-$name.log"
	return $rc
}
wait_status() { # REGEX [TENTHS]
	for _ in $(seq "${2:-150}"); do
		"$URAID" status -s "$SOCK" a6 | grep -qE -- "$1" && return 0
		sleep 0.1
	done
	return 1
}
count() { grep -cE -- "$1" "$T_DIR/serve.log"; }
wait_count() { # REGEX N [TENTHS]: more than N lines match
	for _ in $(seq "${3:-200}"); do
		[ "$(count "$1")" -gt "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

check "fio writes and verifies across the hosts" 0 'err= 0' \
	fio_a6 base 8M 48M --rw=randwrite --do_verify=1
echo "raid6 over 4 remote members (one 2 ms slower): $(grep -oE 'write: IOPS=[^,]*' "$T_DIR/fio-base.log")" >&2
check "the bitmap is clean once the writes stop" 0 '^' wait_status ' 0 dirty' 100

# --- h1's link goes down mid-run, then comes back ---
caught=$(count 'a6: caught up')
(sleep 0.5 && ip -n "$(ns h1)" link set eth0 down) &
downer=$!
check "h1's link down mid-run: fio still verifies" 0 'err= 0' \
	fio_a6 link 0 8M --rw=randwrite --do_verify=1
wait "$downer"
check "its member failed on the timeout" 0 'nh1 \(slot 2\) failed \(Connection timed out\)' \
	cat "$T_DIR/serve.log"
check "the array goes on degraded" 0 '5 of 6 members' "$URAID" status -s "$SOCK" a6
ip -n "$(ns h1)" link set eth0 up
if wait_count 'a6: caught up' "$caught"; then
	t_pass "h1's link up: the member reattaches and catches up"
else
	t_fail "h1's link up: the member reattaches and catches up" "$(tail -n 5 "$T_DIR/serve.log")"
fi
line=$(grep 'a6: caught up' "$T_DIR/serve.log" | tail -n 1)
rebuilt=$(echo "$line" | grep -oE '[0-9]+ units rebuilt' | cut -d' ' -f1)
skipped=$(echo "$line" | grep -oE '[0-9]+ clean' | cut -d' ' -f1)
if [ -n "$rebuilt" ] && [ "${skipped:-0}" -gt "$rebuilt" ]; then
	t_pass "only regions written while it was away were rebuilt ($rebuilt units, $skipped passed over)"
else
	t_fail "only regions written while it was away were rebuilt" "$line"
fi
check "6 of 6 members again" 0 '^' wait_status '6 of 6'

# --- h2 reboots: its server is killed and started again ---
caught=$(count 'a6: caught up')
kill -KILL "${SPID[h2]}"
wait "${SPID[h2]}" 2>/dev/null
check "h2 killed: fio still verifies" 0 'err= 0' \
	fio_a6 reboot 56M 2M --rw=randwrite --do_verify=1 --time_based --runtime=2
start_host h2
if wait_count 'a6: caught up' "$caught"; then
	t_pass "h2 back after SIGKILL: taken back and caught up"
else
	t_fail "h2 back after SIGKILL: taken back and caught up" "$(tail -n 5 "$T_DIR/serve.log")"
fi
check "6 of 6 members after the reboot" 0 '^' wait_status '6 of 6'

# --- h3 (nbdkit) returns a burst of errors ---
touch "$T_DIR/h3.errors"
check "a burst of errors on h3: fio still verifies" 0 'err= 0' \
	fio_a6 burst 58M 2M --rw=randwrite --do_verify=1
rm -f "$T_DIR/h3.errors"
check "h3's member is failed" 0 'nh3 +failed' "$URAID" status -s "$SOCK" a6
check "taken back by hand once the errors stop" 0 '^added$' "$URAID" add-spare -s "$SOCK" a6 nh3
check "6 of 6 members with h3 back" 0 '^' wait_status '6 of 6'

# --- a local member fails: what was written verifies from the remote members ---
check "a local member failed" 0 'failed' "$URAID" fail -s "$SOCK" l0
check "everything written first verifies" 0 'err= 0' \
	fio_a6 base 8M 48M --rw=randwrite --verify_only=1
check "... and what was written while h1 was away" 0 'err= 0' \
	fio_a6 link 0 8M --rw=randwrite --verify_only=1
check "the head is alive at the end" 0 '"uraid v' "$URAID" rpc -s "$SOCK" uraid_get_version
t_done
