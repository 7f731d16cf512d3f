#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Operations across restarts: what the daemon is told over RPC survives a restart (serve
# --config keeps the file current), arrays are found by scanning their members' directory,
# and a config that created an array starts it again.
#
#  1. The new user's scenario, through `make run` (scripts/run.sh): data written over NBD, a
#     spare file added over RPC, two members failed (the spare rebuilt into one slot), Ctrl-C;
#     the next `make run` comes back with raid6 online, the spare in its slot, the failed
#     members failed, the data intact; and again with the config file gone (the scan alone).
#  2. A kill -9 during config rewrites leaves a file that loads (the file or its .bak).
#  3. --scan among unrelated files and a torn member; a config with bdev_raid_create started
#     twice; bad paths and an unwritable config give one-line errors.
. "$(dirname "$0")/lib.sh"

for tool in nbdcopy; do
	if ! command -v $tool >/dev/null; then
		t_skip "operations" "$tool is not installed (scripts/install-deps.sh installs it)"
		t_done
		exit 77
	fi
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SOCK=$T_DIR/var/uraid.sock
RUN_PID=
stop_run() { stop_pid RUN_PID; }
trap 'stop_run; stop_daemon; t_cleanup' EXIT
export URAID_RPC_SOCKET=$SOCK

# make_run LOG: scripts/run.sh in the background over $T_DIR/var (16 MiB members); waits until
# it serves (0) or ends (1).
make_run() {
	URAID_RUN_DIR=$T_DIR/var URAID_RUN_SIZE_MB=16 URAID_RUN_TCP=127.0.0.1:$PORT \
		bash "$ROOT/scripts/run.sh" "$URAID" >"$1" 2>&1 &
	RUN_PID=$!
	for _ in $(seq 300); do
		grep -q '^uraid is serving' "$1" && return 0
		kill -0 $RUN_PID 2>/dev/null || { wait $RUN_PID; RUN_PID=; return 1; }
		sleep 0.1
	done
	return 1
}
PORT=$((20000 + RANDOM % 20000))
NBD="nbd+unix:///raid6?socket=$T_DIR/var/nbd.sock"

# --- 1. the new user's scenario ---
head -c $((6 << 20)) /dev/urandom >"$T_DIR/data.bin"
if make_run "$T_DIR/run1.log" && nbdcopy --flush "$T_DIR/data.bin" "$NBD"; then
	t_pass "make run: raid6 created and served; data written over NBD"
else
	t_fail "make run: first start" "$(tail -n 8 "$T_DIR/run1.log")"
fi
check "a spare file added over RPC" 0 '"m6"' rpc bdev_uring_create \
	"{\"name\":\"m6\",\"filename\":\"$T_DIR/var/m6.img\",\"size_mb\":16,\"block_size\":4096}"
check "uraid add-spare" 0 '^added$' "$URAID" add-spare raid6 m6
check "the config file names the spare's bdev and the spare" 0 'bdev_raid_add_spare' \
	sh -c "sleep 1; cat '$T_DIR/var/uraid.json'"
check "uraid fail m2: the spare takes slot 2" 0 'failed' "$URAID" fail m2
for _ in $(seq 100); do
	"$URAID" status raid6 | grep -qE '2 +m6 +active' && break
	sleep 0.1
done
check "the spare rebuilt into slot 2" 0 '2 +m6 +active' "$URAID" status raid6
check "uraid fail m0" 0 'failed' "$URAID" fail m0
check "uraid fail m1: raid6 serves on two failures" 0 'failed' "$URAID" fail m1
check "failed by request, not by an I/O error" 0 'm1 +failed +\(by request\)' "$URAID" status raid6
stop_run
if make_run "$T_DIR/run2.log"; then
	t_pass "make run again: the daemon comes back"
else
	t_fail "make run again" "$(tail -n 12 "$T_DIR/run2.log")"
fi
check "raid6 online after the restart, m6 in slot 2" 0 '2 +m6 +active' "$URAID" status raid6
check "m0 and m1 still failed" 0 '0 +(m0 +)?(failed|missing).*' "$URAID" status raid6
if nbdcopy "$NBD" - | head -c $((6 << 20)) | cmp -s - "$T_DIR/data.bin"; then
	t_pass "the data written before the restart reads back intact"
else
	t_fail "data after the restart" "differs"
fi
stop_run
rm -f "$T_DIR/var/uraid.json" "$T_DIR/var/uraid.json.bak"
if make_run "$T_DIR/run3.log" && "$URAID" status raid6 | grep -qE '2 +m6 +active' &&
	nbdcopy "$NBD" - | head -c $((6 << 20)) | cmp -s - "$T_DIR/data.bin"; then
	t_pass "config file lost: the scan of ./var alone finds raid6 with m6, data intact"
else
	t_fail "scan alone" "$(tail -n 12 "$T_DIR/run3.log")"
fi
stop_run

# --- 2. kill -9 while the config is being rewritten ---
SOCK=$T_DIR/k.sock
export URAID_RPC_SOCKET=$SOCK
echo '{"subsystems":[]}' >"$T_DIR/k.json"
start_daemon "$T_DIR/k.json"
(
	for i in $(seq 400); do
		rpc bdev_malloc_create "{\"name\":\"k$i\",\"num_blocks\":64,\"block_size\":512}" || break
		rpc bdev_malloc_delete "{\"name\":\"k$i\"}" || break
	done
) >/dev/null 2>&1 &
CHURN=$!
sleep 1.5
kill -9 "$PID"
wait "$PID" 2>/dev/null
PID=
wait $CHURN 2>/dev/null
if python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$T_DIR/k.json" 2>/dev/null; then
	t_pass "kill -9 during rewrites: the config file is whole JSON"
else
	t_fail "kill -9 during rewrites" "$(head -c 300 "$T_DIR/k.json")"
fi
if start_daemon "$T_DIR/k.json"; then
	t_pass "... and the daemon starts from it"
else
	t_fail "restart after kill -9" "$(tail -n 5 "$T_DIR/serve.log")"
fi
stop_daemon

# --- 3. scan, the same config twice, errors ---
mkdir -p "$T_DIR/pool"
files() { t_files "$T_DIR/pool" 16 0 1 2; }
t_cfg "$T_DIR/create.json" "$(files)" \
	'{"method":"bdev_raid_create","params":{"name":"r5","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["F0","F1","F2"],"superblock":true}}'
cp "$T_DIR/create.json" "$T_DIR/create-ro.json"
start_daemon "$T_DIR/create-ro.json" --no-save-config
check "a config that creates r5: online" 0 '"state": "online"' rpc bdev_raid_get_bdevs '{"category":"all"}'
stop_daemon
if start_daemon "$T_DIR/create-ro.json" --no-save-config; then
	t_pass "the same config again starts (assembles r5, creates nothing)"
else
	t_fail "the same config again" "$(grep -i 'error\|cannot' "$T_DIR/serve.log" | tail -n 3)"
fi
check "... r5 online with its three members" 0 '"num_base_bdevs_operational": 3' \
	rpc bdev_raid_get_bdevs '{"category":"online"}'
check "--no-save-config leaves the file as it was" 0 '^$' diff "$T_DIR/create.json" "$T_DIR/create-ro.json"
stop_daemon
# Unrelated files, a torn member (superblock area garbage), another array's member.
head -c $((2 << 20)) /dev/urandom >"$T_DIR/pool/noise.bin"
echo "notes" >"$T_DIR/pool/README"
cp "$T_DIR/pool/f2.img" "$T_DIR/pool/torn.img"
dd if=/dev/urandom of="$T_DIR/pool/torn.img" bs=4096 count=2 conv=notrunc status=none
echo '{"subsystems":[]}' >"$T_DIR/scan.json"
if start_daemon "$T_DIR/scan.json" --scan "$T_DIR/pool"; then
	t_pass "serve --scan DIR starts"
else
	t_fail "serve --scan" "$(tail -n 5 "$T_DIR/serve.log")"
fi
check "the scan found r5 among unrelated files and started it" 0 '"num_base_bdevs_operational": 3' \
	rpc bdev_raid_get_bdevs '{"category":"online"}'
if rpc bdev_get_bdevs | grep -qE '"name": "(noise|README|torn)"'; then
	t_fail "unrelated files and the torn member were left alone" "$(rpc bdev_get_bdevs | grep '"name"')"
else
	t_pass "unrelated files and the torn member were left alone"
fi
check "the scanned members are in the kept config" 0 'pool/f1.img' cat "$T_DIR/scan.json"
check "bdev_raid_scan again opens nothing twice" 0 '"opened": \[\]' \
	rpc bdev_raid_scan "{\"paths\":[\"$T_DIR/pool\"]}"
# Members by path, as mdadm takes devices.
mkdir -p "$T_DIR/p2"
head -c $((16 << 20)) /dev/zero >"$T_DIR/p2/a.img"
export URAID_RPC_SOCKET=$SOCK
check "uraid create over paths (a missing one made with --size)" 0 '^created$' \
	"$URAID" create rp raid1 "$T_DIR/p2/a.img" "$T_DIR/p2/b.img" --size 16M --superblock
check "status: the members by name and path" 0 '1 +b +active +/.*p2/b\.img' "$URAID" status rp
check "add-spare by path" 0 '^added$' "$URAID" add-spare rp "$T_DIR/p2/c.img" --size 16M
check "status lists the spare and its path" 0 '- +c +spare +/.*p2/c\.img' "$URAID" status rp
check "a path already open names its bdev" 1 "'a' is already a member of rp" \
	"$URAID" add-spare rp "$T_DIR/p2/a.img"
check "a missing path without --size: one line" 1 '^uraid create: .*nope\.img: No such file.*--size' \
	"$URAID" create rq raid1 "$T_DIR/nope.img" "$T_DIR/p2/a.img"
check "a bad --size: one line" 1 '^uraid create: --size lots: give a size' \
	"$URAID" create rq raid1 "$T_DIR/p2/new.img" --size lots
stop_daemon
check "a bad scan path: one line" 1 '^uraid serve: --scan: .*nope: No such file' \
	"$URAID" serve --scan "$T_DIR/nope" --rpc-socket "$T_DIR/x.sock"
# /proc takes no new files, whoever runs this (root included).
check "an unwritable config is an error at start, one line" 1 \
	'^uraid serve: cannot keep /proc/uraid-test.json current: cannot create' \
	"$URAID" serve --config /proc/uraid-test.json --rpc-socket "$T_DIR/ro.sock"
# Block devices: the scan takes device nodes as well (loop devices over copies of rp's
# members; needs root and loop devices).
LOOPS=()
if [ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null &&
	cp "$T_DIR/p2/a.img" "$T_DIR/la.img" && cp "$T_DIR/p2/b.img" "$T_DIR/lb.img" &&
	LOOPS+=("$(losetup -f --show "$T_DIR/la.img" 2>/dev/null)") && [ -b "${LOOPS[0]}" ] &&
	LOOPS+=("$(losetup -f --show "$T_DIR/lb.img" 2>/dev/null)") && [ -b "${LOOPS[1]}" ]; then
	trap 'stop_run; stop_daemon; for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done; t_cleanup' EXIT
	echo '{"subsystems":[]}' >"$T_DIR/blk.json"
	SOCK=$T_DIR/blk.sock
	start_daemon "$T_DIR/blk.json" --no-save-config --scan "${LOOPS[0]}" --scan "${LOOPS[1]}"
	check "scan of two block devices assembles rp over them" 0 \
		"\"name\": \"$(basename "${LOOPS[0]}")\"" rpc bdev_raid_get_bdevs '{"category":"online"}'
	stop_daemon
	for l in "${LOOPS[@]}"; do losetup -d "$l"; done
	LOOPS=()
else
	t_skip "scan of block devices" "needs root and loop devices"
	for l in "${LOOPS[@]}"; do [ -b "$l" ] && losetup -d "$l"; done
	LOOPS=()
fi

# The systemd unit: valid, and its command line runs (paths moved into the scratch directory).
unit=$T_DIR/uraid.service
sed -e "s|/usr/local/bin/uraid|$URAID|" -e "s|/etc/uraid/|$T_DIR/etc/|" \
	-e "s|/var/lib/uraid|$T_DIR/lib|" -e "s|/run/uraid/|$T_DIR/run/|" \
	"$ROOT/etc/uraid.service" >"$unit"
if command -v systemd-analyze >/dev/null; then
	check "etc/uraid.service passes systemd-analyze verify" 0 '^$' systemd-analyze verify "$unit"
else
	t_skip "systemd-analyze verify" "systemd-analyze is not installed"
fi
mkdir -p "$T_DIR/etc" "$T_DIR/lib" "$T_DIR/run"
cp "$T_DIR/p2/a.img" "$T_DIR/lib/"
cmd=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed -e 's/^ExecStart=//' -e 's/\\$//' | tr -d '\t\n')
# shellcheck disable=SC2086
$cmd >"$T_DIR/unit.log" 2>&1 &
UPID=$!
for _ in $(seq 100); do [ -S "$T_DIR/run/uraid.sock" ] && break; sleep 0.1; done
check "the unit's command line serves, scanning its state directory" 0 '"name": "rp"' \
	"$URAID" rpc -s "$T_DIR/run/uraid.sock" bdev_raid_get_bdevs '{"category":"all"}'
kill -TERM $UPID
if wait $UPID && grep -q 'stopped cleanly' "$T_DIR/unit.log" && [ -s "$T_DIR/etc/uraid.json" ]; then
	t_pass "SIGTERM (the unit's KillSignal) stops it cleanly, its config kept"
else
	t_fail "the unit's stop" "$(tail -n 3 "$T_DIR/unit.log")"
fi
t_done
