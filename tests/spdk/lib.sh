# SPDX-License-Identifier: BSD-3-Clause
# Shared helper of the SPDK module tests: finds SPDK ($SPDK_DIR, default /opt/spdk) and the
# module (build/spdk/libspdk_bdev_uraid.so), sets up hugepages, starts spdk_tgt or bdevperf with
# the module preloaded, and talks to them through SPDK's rpc.py with our plug-in.
# Without SPDK, the module or root, spdk_need makes the whole script count as skipped.
. "$(dirname "${BASH_SOURCE[0]}")/../func/lib.sh"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SPDK_DIR=${SPDK_DIR:-/opt/spdk}
MODULE=${URAID_SPDK_MODULE:-${URAID_BUILD:-$ROOT/build}/spdk/libspdk_bdev_uraid.so}
SOCK=$T_DIR/spdk.sock
TGT_PID=

# spdk_need N: all N checks of this script are skipped (with the reason) unless SPDK can run.
spdk_need() {
	local why=
	if [ ! -x "$SPDK_DIR/build/bin/spdk_tgt" ] || [ ! -x "$SPDK_DIR/build/examples/bdevperf" ]; then
		why="no SPDK build at SPDK_DIR=$SPDK_DIR (see docs/spdk.md)"
	elif [ ! -f "$MODULE" ]; then
		why="the module is not built: make spdk SPDK_DIR=$SPDK_DIR"
	elif [ "$(id -u)" -ne 0 ]; then
		why="SPDK needs root for hugepages"
	elif ! spdk_hugepages; then
		why="could not set up 2 MiB hugepages"
	fi
	if [ -n "$why" ]; then
		for _ in $(seq "$1"); do t_skip "$(basename "$0" .sh)" "$why"; done
		t_done
		exit 0
	fi
}

spdk_hugepages() {
	local have
	have=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)
	[ "${have:-0}" -ge 512 ] || echo 1024 >/proc/sys/vm/nr_hugepages || return 1
	mkdir -p /dev/hugepages
	mountpoint -q /dev/hugepages || mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
}

tgt_stop() {
	if [ -n "$TGT_PID" ]; then
		kill -INT "$TGT_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$TGT_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$TGT_PID" 2>/dev/null
		wait "$TGT_PID" 2>/dev/null
		TGT_PID=
	fi
}
trap 'tgt_stop; t_cleanup' EXIT

# tgt_start [ARGS...]: spdk_tgt on one core with the module, RPC on $SOCK.
tgt_start() {
	rm -f "$SOCK"
	LD_PRELOAD=$MODULE "$SPDK_DIR/build/bin/spdk_tgt" -m 0x1 -u -r "$SOCK" "$@" \
		>>"$T_DIR/tgt.log" 2>&1 &
	TGT_PID=$!
	for _ in $(seq 150); do
		[ -S "$SOCK" ] && rpc spdk_get_version >/dev/null 2>&1 && return 0
		kill -0 "$TGT_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "spdk_tgt did not start:"; tail -20 "$T_DIR/tgt.log"
	return 1
}
tgt_alive() { [ -n "$TGT_PID" ] && kill -0 "$TGT_PID" 2>/dev/null; }

# rpc METHOD ARGS...: SPDK's rpc.py with the uraid plug-in.
rpc() {
	PYTHONPATH=$ROOT/scripts/spdk${PYTHONPATH:+:$PYTHONPATH} \
		python3 "$SPDK_DIR/scripts/rpc.py" -s "$SOCK" -t 60 --plugin uraid_rpc "$@"
}
# rpc_raw METHOD JSON: one JSON-RPC request as given; prints the whole response.
rpc_raw() {
	python3 - "$SOCK" "$1" "${2:-}" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = {"jsonrpc": "2.0", "id": 1, "method": sys.argv[2]}
if sys.argv[3]:
    req["params"] = json.loads(sys.argv[3])
s.sendall(json.dumps(req).encode())
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
    try:
        print(json.dumps(json.loads(buf)))
        break
    except ValueError:
        pass
EOF
}

# malloc_cfg N MB: bdev_malloc_create calls for m0..m(N-1), comma-separated for t_cfg.
malloc_cfg() {
	local out=() i
	for ((i = 0; i < $1; i++)); do
		out+=("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m$i\",\"num_blocks\":$(($2 * 256)),\"block_size\":4096}}")
	done
	local IFS=,
	echo "${out[*]}"
}
# names PREFIX N: "PREFIX0","PREFIX1",... for a JSON array.
names() {
	local out=() i
	for ((i = 0; i < $2; i++)); do out+=("\"$1$i\""); done
	local IFS=,
	echo "${out[*]}"
}

# bdevperf CONFIG ARGS...: run it with the module on one core; output in $T_DIR/bdevperf.out,
# the "Total" line's IOPS in BP_IOPS and its Fail/s in BP_FAILS. Exit status of bdevperf.
bdevperf() {
	local cfg=$1 rc line; shift
	timeout 120 env LD_PRELOAD="$MODULE" "$SPDK_DIR/build/examples/bdevperf" --json "$cfg" -m 0x1 -u \
		-r "$T_DIR/bdevperf.sock" "$@" 2>&1 | tr '\r' '\n' >"$T_DIR/bdevperf.out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^\s*Total\s*:' "$T_DIR/bdevperf.out" | tail -n 1)
	BP_IOPS=$(awk '{print int($3)}' <<<"$line")
	BP_FAILS=$(awk '{print $5}' <<<"$line")
	return "$rc"
}
