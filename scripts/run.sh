#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# make run: the daemon on its default array. A raid6 array over six sparse member files
# (1 GiB each) in ./var, with superblocks, exported over NBD on ./var/nbd.sock and
# 127.0.0.1:10809, JSON-RPC on ./var/uraid.sock. The first run creates the array; later runs
# find it on the members and assemble it, data intact. Ctrl-C stops the daemon cleanly.
#
# Overrides (used by the tests): URAID_RUN_DIR, URAID_RUN_SIZE_MB, URAID_RUN_TCP,
# URAID_RUN_REACTORS.
set -u
URAID=$(realpath "${1:-build/uraid}")
DIR=${URAID_RUN_DIR:-var}
mkdir -p "$DIR"
DIR=$(realpath "$DIR")
SIZE_MB=${URAID_RUN_SIZE_MB:-1024}
TCP=${URAID_RUN_TCP:-127.0.0.1:10809}
SOCK=$DIR/uraid.sock
NBD=$DIR/nbd.sock
ARRAY=raid6

members=()
cfg=()
fresh=1
for i in 0 1 2 3 4 5; do
	members+=("m$i")
	[ -e "$DIR/m$i.img" ] && fresh=
	cfg+=("{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"m$i\",\"filename\":\"$DIR/m$i.img\",\"size_mb\":$SIZE_MB,\"block_size\":4096}}")
done
# The daemon keeps its config current (spares, new bdevs, exports...): written here only the
# first time. The scan of the directory finds the members even without it.
if [ ! -e "$DIR/uraid.json" ] && [ ! -e "$DIR/uraid.json.bak" ]; then
	(
		IFS=,
		printf '{"subsystems":[{"subsystem":"bdev","config":[%s]}]}\n' "${cfg[*]}"
	) >"$DIR/uraid.json"
fi

"$URAID" serve --config "$DIR/uraid.json" --scan "$DIR" --rpc-socket "$SOCK" \
	--reactors "${URAID_RUN_REACTORS:-2}" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null' INT TERM
up=
for _ in $(seq 200); do
	if ! kill -0 $PID 2>/dev/null; then
		break
	fi
	if "$URAID" rpc -s "$SOCK" -t 5 uraid_get_version >/dev/null 2>&1; then
		up=1
		break
	fi
	sleep 0.1
done
if [ -z "$up" ]; then
	echo "make run: the daemon did not start (see the messages above)" >&2
	kill -TERM $PID 2>/dev/null
	wait $PID
	exit 1
fi
export URAID_RPC_SOCKET=$SOCK
stop() {
	kill -TERM $PID
	wait $PID
	exit 1
}
if [ -n "${URAID_RUN_FORCE:-}" ] && ! "$URAID" status $ARRAY >/dev/null 2>&1; then
	echo "make run: starting $ARRAY degraded as asked (FORCE=1)"
	"$URAID" rpc bdev_raid_examine '{"force":true}' | sed -n 's/^ *"\(.*\)",\{0,1\}$/  \1/p'
fi
if "$URAID" status $ARRAY >/dev/null 2>&1; then
	echo "make run: assembled $ARRAY from its members in $DIR"
elif [ -n "$fresh" ]; then
	"$URAID" create $ARRAY raid6 "${members[@]}" -z 64 --superblock || stop
else
	# Its members are here but it did not start: say why, and what would start it. Never
	# create a new array over members that carry one.
	echo "make run: $ARRAY did not start from the members in $DIR:" >&2
	"$URAID" rpc bdev_raid_examine | sed -n 's/^ *"\(.*\)",\{0,1\}$/  \1/p' >&2
	cat >&2 <<HELP
To start it:
  - bring back the missing members (their files, in $DIR) and run 'make run' again; or
  - start it with what is here: 'make run FORCE=1'. If it is degraded after an unclean
    shutdown under a policy without a log, a stripe that was being written at the crash may
    rebuild wrong for its missing member; run 'uraid scrub $ARRAY' afterwards. If more
    members are missing than the level tolerates, it cannot start at all: its data is
    beyond what parity can rebuild.
HELP
	stop
fi
# The exports are in the kept config after the first run.
if ! "$URAID" rpc nbd_get_disks | grep -q "\"nbd_device\": \"$NBD\"" &&
	! "$URAID" export $ARRAY "$NBD" "$TCP" >/dev/null; then
	kill -TERM $PID
	wait $PID
	exit 1
fi
"$URAID" status $ARRAY
port=${TCP##*:}
cat <<USAGE

uraid is serving $ARRAY over NBD on $NBD and $TCP (JSON-RPC: $SOCK).
Try, from another terminal:

  nbdinfo 'nbd+unix:///$ARRAY?socket=$NBD'
  nbdcopy some.img 'nbd+unix:///$ARRAY?socket=$NBD'          # write a file in
  nbdcopy 'nbd://$TCP/$ARRAY' copy.img                    # and read it out over TCP
  fio --name=t --ioengine=nbd --uri='nbd+unix:///$ARRAY?socket=$NBD' \\
      --rw=randrw --bs=4k --iodepth=32 --size=256m --verify=crc32c
  qemu-img info 'nbd+unix:///$ARRAY?socket=$NBD'
  URAID_RPC_SOCKET=$SOCK $URAID status          # members, rebuilds
  URAID_RPC_SOCKET=$SOCK $URAID fail m2         # then watch 'status' as it runs degraded

Ctrl-C stops the daemon cleanly; the next 'make run' assembles the same array.
USAGE
wait $PID
rc=$?
# A signal ends the first wait early: wait for the daemon's clean shutdown.
while kill -0 $PID 2>/dev/null; do
	wait $PID
	rc=$?
done
exit $rc
