#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# NBD exports of a running daemon, driven by real clients: nbdinfo reports the size, nbdcopy
# copies a random file in and out (several connections), fio's nbd engine writes and verifies
# (crc32c) on raid0/1/5/6/ec; a member fails while fio verifies, a spare is rebuilt and must
# serve the data; the daemon is killed with -9 and restarted on its file members with the
# acknowledged data intact; garbage on an NBD connection closes only that connection.
. "$(dirname "$0")/lib.sh"

SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT
PORT=$((20000 + $$ % 20000))

need_tools nbdinfo nbdcopy fio

uri() { echo "nbd+unix:///$1?socket=$T_DIR/$1.nbd"; }
ram() { # NAME MIB
	echo "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"$1\",\"num_blocks\":$(($2 * 256)),\"block_size\":4096}}"
}
raid() { # NAME LEVEL MEMBERS_JSON [EXTRA]
	echo "{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"$1\",\"raid_level\":\"$2\",\"strip_size_kb\":64,\"base_bdevs\":$3${4:+,$4}}}"
}
cfg=()
for i in 0 1; do cfg+=("$(ram a$i 16)" "$(ram b$i 16)"); done
for i in 0 1 2 3; do cfg+=("$(ram c$i 16)"); done
for i in 0 1 2 3 4 5; do cfg+=("$(ram d$i 16)"); done
for i in 0 1 2 3 4; do cfg+=("$(ram e$i 16)"); done
for i in 0 1 2 3; do cfg+=("$(ram p$i 16)" "$(ram j$i 16)" "$(ram k$i 16)"); done
cfg+=("$(ram jm0 4)" "$(ram jm1 4)")
cfg+=("$(raid r0 raid0 '["a0","a1"]')" "$(raid r1 raid1 '["b0","b1"]')"
	"$(raid r5 raid5 '["c0","c1","c2","c3"]')" "$(raid r6 raid6 '["d0","d1","d2","d3","d4","d5"]')"
	"$(raid ec ec '["e0","e1","e2","e3","e4"]' '"data_chunks":3,"parity_chunks":2')"
	"$(raid p5 raid5 '["p0","p1","p2","p3"]' '"superblock":true')"
	"$(raid j5 raid5 '["j0","j1","j2","j3"]' \
		'"superblock":true,"consistency_policy":"journal","journal_mode":"write-back"')"
	"$(raid jm raid1 '["jm0","jm1"]')"
	"$(raid k5 raid5 '["k0","k1","k2","k3"]' \
		'"superblock":true,"consistency_policy":"journal","journal_mode":"write-back","journal_bdev":"jm"')")
t_cfg "$T_DIR/arrays.json" "${cfg[@]}"

if ! start_daemon "$T_DIR/arrays.json"; then
	t_fail "serve starts" "$(tail -n 5 "$T_DIR/serve.log")"
	t_done
	exit
fi
export URAID_RPC_SOCKET=$SOCK
for a in r0 r1 r5 r6 ec; do
	"$URAID" export $a "$T_DIR/$a.nbd" >/dev/null || t_fail "export $a" "refused"
done
check "uraid export on TCP" 0 "nbd://127.0.0.1:$PORT/r0" "$URAID" export r0 "127.0.0.1:$PORT"
check "uraid export lists the exports" 0 "r6 .*$T_DIR/r6.nbd" "$URAID" export
check "nbd_get_disks (SPDK's shape)" 0 '"bdev_name": "r5"' rpc nbd_get_disks
rpc save_config >"$T_DIR/saved.json"
check "save_config lists members, arrays and exports" 0 'nbd_start_disk' \
	grep -E 'bdev_raid_create|nbd_start_disk' "$T_DIR/saved.json"
check "nbdinfo reports the size of raid6 (4 data x 16 MiB)" 0 '^67108864$' \
	nbdinfo --size "$(uri r6)"
check "nbdinfo reports the size over TCP" 0 '^33554432$' \
	nbdinfo --size "nbd://127.0.0.1:$PORT/r0"
check "the default export is the bdev" 0 '^67108864$' \
	nbdinfo --size "nbd+unix:///?socket=$T_DIR/r6.nbd"
check "an unknown export name is refused" 1 'export' nbdinfo --size "nbd+unix:///nope?socket=$T_DIR/r6.nbd"

# nbdcopy in and out (nbdcopy opens several connections: multi-conn is advertised).
head -c $((20 << 20)) /dev/urandom >"$T_DIR/in.bin"
for a in r5 ec; do
	if nbdcopy --flush "$T_DIR/in.bin" "$(uri $a)" &&
		nbdcopy "$(uri $a)" - | head -c $((20 << 20)) | cmp -s - "$T_DIR/in.bin"; then
		t_pass "nbdcopy in and out of $a: identical"
	else
		t_fail "nbdcopy in and out of $a" "the data differ"
	fi
done

# fio's nbd engine, write then verify, random sizes that cross strips and stripes.
fio_verify() { # ARRAY OFFSET SIZE [FIO ARGS...]
	local a=$1 off=$2 size=$3; shift 3
	fio --name=v --ioengine=nbd --uri="$(uri $a)" --rw=randwrite --bsrange=4k-128k \
		--iodepth=32 --offset="$off" --size="$size" --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --randseed=7 --verify_state_save=0 "$@" >"$T_DIR/fio-$a.log" 2>&1
}
for a in r0 r1 r5 r6 ec; do
	if fio_verify $a 0 12m && grep -q 'err= 0' "$T_DIR/fio-$a.log"; then
		t_pass "fio nbd engine, verify=crc32c on $a"
	else
		t_fail "fio verify on $a" "$(grep -iE 'err|verify' "$T_DIR/fio-$a.log" | head -n 4)"
	fi
done

check "bdev_raid_get_stats counts fio's writes" 0 '"num_write_ops": [1-9]' \
	"$URAID" stats r5 0 --json
# p5 has superblocks, so the partial parity log (the parity default) keeps its parity; j5 has
# the journal in write-back mode (writes answered once logged, reads wait for them to get
# home); k5 too, with the journal on a raid1 array of its own. Their log counters show in the
# stats. The exports go before save_config below (memory members do not keep superblocks
# across daemons).
for arr in p5 j5 k5; do
	"$URAID" export $arr "$T_DIR/$arr.nbd" >/dev/null
	if nbdcopy --flush "$T_DIR/in.bin" "$(uri $arr)" &&
		nbdcopy "$(uri $arr)" - | head -c $((20 << 20)) | cmp -s - "$T_DIR/in.bin"; then
		t_pass "nbdcopy in and out of $arr: identical"
	else
		t_fail "nbdcopy in and out of $arr" "the data differ"
	fi
	check "bdev_raid_get_stats: $arr's log counters" 0 '"entries": [1-9]' \
		"$URAID" stats $arr 0 --json
	"$URAID" export --stop "$T_DIR/$arr.nbd" >/dev/null
done
check "bdev_raid_get_bdevs: the journal's mode" 0 '"journal_mode": "write-back"' \
	rpc bdev_raid_get_bdevs '{"category":"all"}'
if "$URAID" stats r5 0 --json | grep -q '"read_errors_repaired"' &&
	! "$URAID" stats r5 0 --json | grep -q '"ppl"'; then
	t_pass "no log counters on an array without the log"
else
	t_fail "stats of r5" "a ppl object without the log, or no stats"
fi
check "uraid stats: rates over an interval" 0 'last 0.2 s: read .* IOPS' "$URAID" stats r5 0.2
check "bdev_get_iostat (SPDK's shape)" 0 '"tick_rate"' rpc bdev_get_iostat '{"name":"c0"}'

# A member fails while fio writes and verifies: fio sees no error.
fio_verify r6 16m 24m --rate=12m >/dev/null 2>&1 &
FIO=$!
sleep 1
check "fail a raid6 member while fio runs" 0 'failed' "$URAID" fail d2
if wait $FIO && grep -q 'err= 0' "$T_DIR/fio-r6.log"; then
	t_pass "fio verify stays clean across the failure"
else
	t_fail "fio verify across a member failure" "$(grep -iE 'err|verify' "$T_DIR/fio-r6.log" | head -n 4)"
fi
check "raid6 is degraded" 0 'd2 .*failed|degraded' "$URAID" status r6
check "bdev_raid_get_stats: degraded" 0 '"state": "degraded"' "$URAID" stats r6 0 --json

# A spare takes the slot and is rebuilt; with two more members failed, reads need it.
nbdcopy --flush "$T_DIR/in.bin" "$(uri r6)"
rpc bdev_malloc_create '{"name":"d6","num_blocks":4096,"block_size":4096}' >/dev/null
check "add a spare: the rebuild starts" 0 'added' "$URAID" add-spare r6 d6
for _ in $(seq 200); do
	"$URAID" status r6 --json | grep -q '"process"' || break
	sleep 0.1
done
check "the rebuild finished: d6 is active" 0 'd6 +active' "$URAID" status r6
"$URAID" fail d0 >/dev/null && "$URAID" fail d1 >/dev/null
if nbdcopy "$(uri r6)" - | head -c $((20 << 20)) | cmp -s - "$T_DIR/in.bin"; then
	t_pass "the rebuilt spare serves the data with two members failed"
else
	t_fail "data after rebuild" "differs"
fi

# Garbage on one NBD connection closes that connection; the daemon and others go on.
exec 3<>/dev/tcp/127.0.0.1/$PORT
greeting=$(head -c 8 <&3)
printf '\0\0\0\3GET / HTTP/1.1\r\n\r\n' >&3 # client flags, then no option magic
# Closed means end of stream or a reset (the server closes with the rest of the garbage unread,
# so the kernel may answer with RST); only the 5 s timeout (status 124) means still open.
timeout 5 cat <&3 >/dev/null 2>&1
closed=$?
if [ "$greeting" = NBDMAGIC ] && [ $closed -ne 124 ]; then
	t_pass "garbage in the handshake: that connection is closed"
else
	t_fail "garbage in the handshake" "greeting '$greeting', connection not closed"
fi
exec 3<&-
check "the export still serves after garbage" 0 '^33554432$' \
	nbdinfo --size "nbd://127.0.0.1:$PORT/r0"
check "uraid export --stop" 0 'stopped' "$URAID" export --stop "127.0.0.1:$PORT"
check "a stopped export refuses connections" 1 '.' nbdinfo --size "nbd://127.0.0.1:$PORT/r0"
check "stopping an unknown export" 1 'no export on' "$URAID" export --stop "127.0.0.1:$PORT"
check "exporting an array member is refused" 1 'in use by r5' "$URAID" export c0 "$T_DIR/c0.nbd"
stop_daemon
check "SIGTERM: exports stopped, clean exit" 0 'stopped exporting r6' cat "$T_DIR/serve.log"

# save_config, loaded by a new daemon, makes the same arrays and exports.
if start_daemon "$T_DIR/saved.json" && rpc save_config | diff -q - "$T_DIR/saved.json" >/dev/null &&
	[ "$(nbdinfo --size "$(uri r6)")" = 67108864 ]; then
	t_pass "a daemon started on save_config's output serves the same arrays and exports"
else
	t_fail "save_config round trip" "$(rpc save_config | diff - "$T_DIR/saved.json" | head -n 5)"
fi
stop_daemon

# kill -9 with file members: what was acknowledged is there after a restart.
files=()
for i in 0 1 2; do
	files+=("{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"F$i\",\"filename\":\"$T_DIR/f$i.img\",\"size_mb\":16,\"block_size\":4096}}")
done
t_cfg "$T_DIR/files.json" "${files[@]}"
nbd_cfg() { # the members, then an NBD subsystem exporting r5f
	local IFS=,
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]},{"subsystem":"nbd","config":[{"method":"nbd_start_disk","params":{"bdev_name":"r5f","nbd_device":"%s"}}]}]}\n' \
		"${files[*]}" "$T_DIR/r5f.nbd" >"$T_DIR/files-nbd.json"
}
nbd_cfg
start_daemon "$T_DIR/files.json"
"$URAID" create r5f raid5 F0 F1 F2 --superblock >/dev/null
"$URAID" export r5f "$T_DIR/r5f.nbd" >/dev/null
nbdcopy "$T_DIR/in.bin" "$(uri r5f)"
fio_verify r5f 20m 8m
kill -9 "$PID"
wait "$PID" 2>/dev/null
PID=
if start_daemon "$T_DIR/files-nbd.json" &&
	nbdcopy "$(uri r5f)" - | head -c $((20 << 20)) | cmp -s - "$T_DIR/in.bin"; then
	t_pass "kill -9 and restart: the data nbdcopy wrote are intact"
else
	t_fail "kill -9 and restart" "$(tail -n 5 "$T_DIR/serve.log")"
fi
if fio_verify r5f 20m 8m --verify_only && grep -q 'err= 0' "$T_DIR/fio-r5f.log"; then
	t_pass "kill -9 and restart: fio's blocks verify"
else
	t_fail "fio verify_only after restart" "$(grep -iE 'err|verify' "$T_DIR/fio-r5f.log" | head -n 4)"
fi
stop_daemon
t_done
