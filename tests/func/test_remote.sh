#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Remote members over NBD (bdev_nbd_attach), between processes on this host: a "remote"
# daemon exports a file-backed bdev on 127.0.0.1, a "head" daemon attaches it and builds a
# raid5 with a write-intent bitmap over it and three local members, and fio (nbd engine,
# crc32c verify) writes through the head. The remote stops answering (SIGSTOP): its member
# fails on the timeout and the array goes on degraded; it answers again: the member is taken
# back and catches up on the regions written meanwhile only. The remote is killed (SIGKILL)
# and restarted: taken back again. A local member is then failed, so every read of its strips
# reconstructs from the remote one, and the data verifies. nbdkit serves a member through its
# delay and error filters, and (eval plugin) one without FUA, where a FUA write must become a
# write and then a flush. Remote bdevs serve as a spare, a replacement and a journal device.
# Servers that break the protocol (a reply with a wrong handle, a reply cut short) fail their
# member with the reason and nothing else. Bad URIs, servers that are not NBD, read-only
# exports and block sizes that do not fit are refused with the reason.
. "$(dirname "$0")/lib.sh"

SOCK=$T_DIR/head.sock
RSOCK=$T_DIR/remote.sock
RPID=
NBDKIT_PIDS=()
stop_remote() { stop_pid RPID; }
# An nbdkit started with -P FILE, to be stopped at the end: its pid once the file holds it
# (nbdkit writes it from the server process, which may come after the parent has returned).
kit_started() {
	for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.1; done
	NBDKIT_PIDS+=("$(cat "$1")")
}
cleanup() {
	stop_daemon
	stop_remote
	for p in "${NBDKIT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	t_cleanup
}
trap cleanup EXIT
PORT=$((20000 + $$ % 20000))
BADPORT=$((PORT + 1))

need_tools fio nbdkit python3

start_remote() { # the remote host's daemon: f0 over a file, exported on TCP
	t_cfg "$T_DIR/remote.json" "$(t_files "$T_DIR" 32 0)"
	"$URAID" serve --config "$T_DIR/remote.json" --rpc-socket "$RSOCK" --reactors 1 \
		>>"$T_DIR/remote.log" 2>&1 &
	RPID=$!
	wait_rpc "$RSOCK"
	"$URAID" export -s "$RSOCK" F0 "127.0.0.1:$PORT" >/dev/null
}
# wait_log FILE REGEX COUNT [TENTHS]: until the log has more than COUNT lines matching REGEX
wait_log() {
	for _ in $(seq "${4:-100}"); do
		[ "$(grep -cE -- "$2" "$1")" -gt "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
# until the array's bitmap has no dirty region (the sweep clears them once writes stop)
wait_clean() {
	for _ in $(seq 100); do
		"$URAID" status -s "$SOCK" "$1" | grep -q ' 0 dirty' && return 0
		sleep 0.1
	done
	return 1
}
attach() { # NAME URI [EXTRA]
	rpc bdev_nbd_attach "{\"name\":\"$1\",\"uri\":\"$2\"${3:+,$3}}"
}
fio_nbd() { # NAME URI OFFSET SIZE [FIO OPTIONS...]: prints its log
	local name=$1 uri=$2 off=$3 size=$4
	shift 4
	fio --name="$name" --ioengine=nbd --uri="$uri" --bs=4k --iodepth=16 --offset="$off" \
		--size="$size" --verify=crc32c --verify_fatal=1 --verify_state_save=0 --randseed=7 "$@" \
		>"$T_DIR/fio-$name.log" 2>&1
	local rc=$?
	cat "$T_DIR/fio-$name.log"
	return $rc
}

start_remote
t_cfg "$T_DIR/head.json" \
	"{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"l0\",\"num_blocks\":8192,\"block_size\":4096}}" \
	"{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"l1\",\"num_blocks\":8192,\"block_size\":4096}}" \
	"{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"l2\",\"num_blocks\":8192,\"block_size\":4096}}" \
	"{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"l3\",\"num_blocks\":8192,\"block_size\":4096}}"
if ! start_daemon "$T_DIR/head.json"; then
	t_fail "head daemon starts" "$(tail -n 5 "$T_DIR/serve.log")"
	t_done
	exit
fi
URI="nbd://127.0.0.1:$PORT/F0"

# --- bad input: each refused with its reason, the daemon unaffected ---
check "a URI libnbd does not take" 1 'cannot attach .x0.: .*(scheme|URI|uri)' \
	attach x0 "http://127.0.0.1:$PORT/F0"
check "nothing listening" 1 "cannot attach 'x0': .*(refused|Connection)" \
	attach x0 "nbd://127.0.0.1:$BADPORT/F0" '"timeout_ms":2000'
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
open(sys.argv[2], "w").close()
for _ in range(4):
    c, _ = s.accept(); c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n" * 8); c.close()
' "$BADPORT" "$T_DIR/http.ready" &
NBDKIT_PIDS+=($!)
for _ in $(seq 100); do [ -e "$T_DIR/http.ready" ] && break; sleep 0.1; done
check "a server that is not NBD" 1 "cannot attach 'x0': .*(magic|handshake|NBD|server)" \
	attach x0 "nbd://127.0.0.1:$BADPORT/F0" '"timeout_ms":2000'
check "an export that does not exist" 1 "cannot attach 'x0'" attach x0 "nbd://127.0.0.1:$PORT/nosuch"
nbdkit -r -U "$T_DIR/ro.nbd" -P "$T_DIR/ro.pid" memory 16M
kit_started "$T_DIR/ro.pid"
check "a read-only export" 1 "read-only" attach x0 "nbd+unix:///?socket=$T_DIR/ro.nbd"
nbdkit -U "$T_DIR/bs.nbd" -P "$T_DIR/bs.pid" --filter=blocksize-policy memory 16M \
	blocksize-minimum=8192 blocksize-preferred=8192
kit_started "$T_DIR/bs.pid"
check "an export that needs larger blocks" 1 "needs 8192-byte blocks" \
	attach x0 "nbd+unix:///?socket=$T_DIR/bs.nbd"
check "connections out of range" 1 "connections: 1 to 16" attach x0 "$URI" '"connections":17'
check "a timeout too short" 1 "timeout_ms" attach x0 "$URI" '"timeout_ms":1'
check "a block size that is not one" 1 "block_size 1000" attach x0 "$URI" '"block_size":1000'
check "the daemon is unaffected" 0 '"uraid v' rpc uraid_get_version

# --- a remote member ---
check "attach (two connections: the server allows multi-conn)" 0 '"n0"' \
	attach n0 "$URI" '"connections":2,"timeout_ms":1000,"reconnect_delay_ms":200'
check "a name taken" 1 "exists already" attach n0 "$URI"
check "bdev_get_bdevs shows the URI and the connections" 0 \
	"\"uri\":\"nbd://127.0.0.1:$PORT/F0\",\"connections\":2,\"connections_up\":2" \
	sh -c "'$URAID' rpc -s '$SOCK' bdev_get_bdevs '{\"name\":\"n0\"}' | tr -d ' \n'"
rpc save_config >"$T_DIR/saved.json"
check "save_config keeps the attach" 0 '"bdev_nbd_attach"' cat "$T_DIR/saved.json"
check "raid5 over three local members and the remote one" 0 true \
	rpc bdev_raid_create '{"name":"r5","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["l0","l1","l2","n0"],"superblock":true,"consistency_policy":"bitmap","bitmap_region_kb":1024}'
"$URAID" export -s "$SOCK" r5 "$T_DIR/r5.nbd" >/dev/null
R5="nbd+unix:///r5?socket=$T_DIR/r5.nbd"
check "fio writes and verifies through it" 0 'err= 0' \
	fio_nbd big "$R5" 8M 56M --rw=randwrite --do_verify=1
check "the bitmap is clean once the writes stop" 0 "^" wait_clean r5

# --- the remote stops answering, then answers again ---
kill -STOP "$RPID"
check "remote stopped: fio still verifies (writes to the first 4 MiB)" 0 'err= 0' \
	fio_nbd small "$R5" 0 4M --rw=randwrite --do_verify=1
check "its member failed on the timeout" 0 'n0 \(slot 3\) failed \(Connection timed out\)' \
	cat "$T_DIR/serve.log"
check "the array goes on degraded" 0 '3 of 4 members' "$URAID" status -s "$SOCK" r5
kill -CONT "$RPID"
if wait_log "$T_DIR/serve.log" 'r5: caught up' 0 150; then
	t_pass "remote answers again: the member is taken back and catches up"
else
	t_fail "remote answers again: the member is taken back and catches up" \
		"$(tail -n 5 "$T_DIR/serve.log")"
fi
stats=$("$URAID" rpc -s "$SOCK" bdev_raid_get_stats '{"name":"r5"}' | tr -d ' \n')
units=$(echo "$stats" | grep -o '"units":[0-9]*' | head -n1 | cut -d: -f2)
skipped=$(echo "$stats" | grep -o '"units_skipped":[0-9]*' | head -n1 | cut -d: -f2)
if [ "${skipped:-0}" -gt 0 ] && [ "${units:-0}" -gt 0 ] && [ "$units" -lt "$skipped" ]; then
	t_pass "only the regions written while it was away were rebuilt ($units units, $skipped passed over)"
else
	t_fail "only the regions written while it was away were rebuilt" "$stats"
fi
for _ in $(seq 50); do "$URAID" status -s "$SOCK" r5 | grep -q '4 of 4' && break; sleep 0.1; done
check "4 of 4 members again" 0 '4 of 4 members' "$URAID" status -s "$SOCK" r5

# --- the remote host dies (SIGKILL) and comes back on the same file ---
kill -KILL "$RPID"
wait "$RPID" 2>/dev/null
RPID=
n_back=$(grep -c 'r5: caught up' "$T_DIR/serve.log")
start_remote
if wait_log "$T_DIR/serve.log" 'r5: caught up' "$n_back" 200; then
	t_pass "remote killed and restarted: taken back by its superblock"
else
	t_fail "remote killed and restarted: taken back by its superblock" \
		"$(tail -n 5 "$T_DIR/serve.log")"
fi
for _ in $(seq 100); do "$URAID" status -s "$SOCK" r5 | grep -q '4 of 4' && break; sleep 0.1; done
check "4 of 4 members after the restart" 0 '4 of 4 members' "$URAID" status -s "$SOCK" r5
check "... and it caught up by the bitmap, not a full rebuild" 0 'caught up: [0-9]+ units rebuilt, [1-9][0-9]* clean' \
	tail -n 3 "$T_DIR/serve.log"

# --- a local member fails: reads of its strips come from the remote one ---
check "a local member failed" 0 'failed' "$URAID" fail -s "$SOCK" l0
check "the data written before verifies (big)" 0 'err= 0' \
	fio_nbd big "$R5" 8M 56M --rw=randwrite --verify_only=1
check "... and the data written while the remote was away (small)" 0 'err= 0' \
	fio_nbd small "$R5" 0 4M --rw=randwrite --verify_only=1
check "uraid delete r5" 0 '^deleted$' "$URAID" delete -s "$SOCK" r5

# --- nbdkit as the remote: slow (2 ms a request), then a burst of errors ---
nbdkit -U "$T_DIR/kit.nbd" -P "$T_DIR/kit.pid" --filter=error --filter=delay \
	memory 32M delay-read=2ms delay-write=2ms error=EIO error-rate=100% \
	error-file="$T_DIR/kit.errors"
kit_started "$T_DIR/kit.pid"
check "attach nbdkit (delay and error filters)" 0 '"k0"' \
	attach k0 "nbd+unix:///?socket=$T_DIR/kit.nbd" '"timeout_ms":2000,"reconnect_delay_ms":200'
check "raid1 over a local member and the slow one" 0 true \
	rpc bdev_raid_create '{"name":"m1","raid_level":"raid1","base_bdevs":["l3","k0"],"superblock":true,"consistency_policy":"bitmap"}'
"$URAID" export -s "$SOCK" m1 "$T_DIR/m1.nbd" >/dev/null
M1="nbd+unix:///m1?socket=$T_DIR/m1.nbd"
check "fio verifies over the slow member" 0 'err= 0' \
	fio_nbd slow "$M1" 0 8M --rw=randwrite --do_verify=1 --fsync=16
echo "slow member: $(grep -oE 'write: IOPS=[^,]*' "$T_DIR/fio-slow.log")" >&2
touch "$T_DIR/kit.errors"
check "a burst of errors: fio still verifies" 0 'err= 0' \
	fio_nbd burst "$M1" 8M 4M --rw=randwrite --do_verify=1
rm -f "$T_DIR/kit.errors"
check "... the member that erred is failed, the array degraded" 0 '1 of 2 members' \
	"$URAID" status -s "$SOCK" m1
check "taken back by hand once the errors stop" 0 '^added$' "$URAID" add-spare -s "$SOCK" m1 k0
for _ in $(seq 100); do "$URAID" status -s "$SOCK" m1 | grep -q '2 of 2' && break; sleep 0.1; done
check "2 of 2 members again" 0 '2 of 2 members' "$URAID" status -s "$SOCK" m1
check "a member cannot be detached under its array" 1 'in use|claimed' \
	rpc bdev_nbd_detach '{"name":"k0"}'
check "uraid delete m1" 0 '^deleted$' "$URAID" delete -s "$SOCK" m1
check "bdev_nbd_detach" 0 true rpc bdev_nbd_detach '{"name":"k0"}'
check "bdev_nbd_detach of what is not one" 1 'not a NBD export' rpc bdev_nbd_detach '{"name":"l3"}'
# --- a server without FUA (nbdkit's eval plugin over a file): FUA becomes write, then flush ---
truncate -s 16M "$T_DIR/ev.img"
nbdkit -U "$T_DIR/ev.nbd" -P "$T_DIR/ev.pid" eval get_size='echo 16777216' \
	pread="dd if=$T_DIR/ev.img skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none" \
	pwrite="dd of=$T_DIR/ev.img seek=\$4 conv=notrunc oflag=seek_bytes status=none; echo write >>$T_DIR/ev.log" \
	can_write='exit 0' can_flush='exit 0' flush="echo flush >>$T_DIR/ev.log" can_fua='echo none'
kit_started "$T_DIR/ev.pid"
check "attach a server without FUA" 0 '"e0"' attach e0 "nbd+unix:///?socket=$T_DIR/ev.nbd"
check "... it says so: flush, no FUA" 0 'flush$' sh -c "grep 'e0: nbd+unix' '$T_DIR/serve.log'"
check "a mirror with superblocks over it (their writes are FUA)" 0 true \
	rpc bdev_raid_create '{"name":"fm","raid_level":"raid1","base_bdevs":["l0","e0"],"superblock":true,"force":true}'
# The superblock rounds (FUA, primary then backup copy): each write answered, then a flush.
# (Without the emulation they arrive as writes back to back.)
ev=$(head -n 10 "$T_DIR/ev.log" | tr '\n' ' ')
if [[ "$ev" == *"write flush write flush"* ]]; then
	t_pass "FUA writes reached the server as a write, then a flush, each"
else
	t_fail "FUA writes reached the server as a write, then a flush, each" "$ev"
fi
"$URAID" export -s "$SOCK" fm "$T_DIR/fm.nbd" >/dev/null
head -c 4M /dev/urandom >"$T_DIR/fm.bin"
nbdcopy --flush "$T_DIR/fm.bin" "nbd+unix:///fm?socket=$T_DIR/fm.nbd"
check "the local half of the mirror fails" 0 'failed' "$URAID" fail -s "$SOCK" l0
if nbd_reads_back "nbd+unix:///fm?socket=$T_DIR/fm.nbd" "$T_DIR/fm.bin"; then
	t_pass "what was written reads back from the member without FUA alone"
else
	t_fail "what was written reads back from the member without FUA alone" "differs"
fi
check "uraid delete fm" 0 '^deleted$' "$URAID" delete -s "$SOCK" fm
# --- remote bdevs as a spare, a replacement and a journal device (nbdkit memory exports) ---
for k in s0 s1 j0; do
	nbdkit -U "$T_DIR/$k.nbd" -P "$T_DIR/$k.pid" memory 32M
	kit_started "$T_DIR/$k.pid"
	attach "$k" "nbd+unix:///?socket=$T_DIR/$k.nbd" >/dev/null
done
for b in q0 q1 q2; do
	rpc bdev_malloc_create "{\"name\":\"$b\",\"num_blocks\":8192,\"block_size\":4096}" >/dev/null
done
check "raid5 with its journal on a remote device" 0 '^created$' \
	"$URAID" create -s "$SOCK" rj raid5 q0 q1 q2 -z 64 --superblock --policy journal --journal-bdev j0
check "... a remote spare" 0 '^added$' "$URAID" add-spare -s "$SOCK" rj s0
"$URAID" export -s "$SOCK" rj "$T_DIR/rj.nbd" >/dev/null
RJ="nbd+unix:///rj?socket=$T_DIR/rj.nbd"
check "fio verifies through the remote journal" 0 'err= 0' \
	fio_nbd rj "$RJ" 0 8M --rw=randwrite --do_verify=1
check "a member fails" 0 'failed' "$URAID" fail -s "$SOCK" q1
for _ in $(seq 100); do "$URAID" status -s "$SOCK" rj | grep -q '3 of 3' && break; sleep 0.1; done
check "... the remote spare took its slot and was rebuilt" 0 's0 +active' "$URAID" status -s "$SOCK" rj
check "a member replaced by a remote one, online" 0 'replac' "$URAID" replace -s "$SOCK" rj q2 s1
for _ in $(seq 100); do "$URAID" status -s "$SOCK" rj | grep -q 's1 +active' && break; sleep 0.1; done
check "... the remote replacement is active" 0 's1 +active' "$URAID" status -s "$SOCK" rj
check "the data verifies on the remote spare and replacement" 0 'err= 0' \
	fio_nbd rj "$RJ" 0 8M --rw=randwrite --verify_only=1
# --- servers that break the protocol in transmission: the member fails, nothing else ---
for mode in handle short; do
	python3 "$(dirname "$0")/bad_nbd_server.py" "$T_DIR/bad-$mode.nbd" $mode &
	NBDKIT_PIDS+=($!)
	for _ in $(seq 50); do [ -S "$T_DIR/bad-$mode.nbd" ] && break; sleep 0.1; done
	rpc bdev_malloc_create "{\"name\":\"z$mode\",\"num_blocks\":4096,\"block_size\":4096}" >/dev/null
	check "a server that breaks the protocol ($mode): attached (its handshake is right)" 0 \
		"\"b$mode\"" attach "b$mode" "nbd+unix:///?socket=$T_DIR/bad-$mode.nbd" '"timeout_ms":2000'
	check "... a mirror over it and a local member" 0 true \
		rpc bdev_raid_create "{\"name\":\"bm$mode\",\"raid_level\":\"raid1\",\"base_bdevs\":[\"z$mode\",\"b$mode\"]}"
	"$URAID" export -s "$SOCK" "bm$mode" "$T_DIR/bm$mode.nbd" >/dev/null
	head -c 1M /dev/urandom >"$T_DIR/bm.bin"
	nbdcopy --flush "$T_DIR/bm.bin" "nbd+unix:///bm$mode?socket=$T_DIR/bm$mode.nbd" 2>/dev/null
	# (Read before the checks: a read is what the short mode breaks.)
	same=no
	nbd_reads_back "nbd+unix:///bm$mode?socket=$T_DIR/bm$mode.nbd" "$T_DIR/bm.bin" 2>/dev/null && same=yes
	check "... its member failed with the reason, the mirror serves on" 0 "b$mode: connection 0 .* lost: " \
		cat "$T_DIR/serve.log"
	check "... one of two members" 0 '1 of 2 members' "$URAID" status -s "$SOCK" "bm$mode"
	if [ $same = yes ]; then
		t_pass "... and what was written reads back right"
	else
		t_fail "... and what was written reads back right" "differs"
	fi
done
check "the daemon is alive at the end" 0 '"uraid v' rpc uraid_get_version
t_done
