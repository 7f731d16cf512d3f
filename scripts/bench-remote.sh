#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# docs/bench.md section 8: an array with remote members (bdev_nbd_attach) against the same
# array over local members, in one run. raid6 x6, 64 KiB strips, ram members of 256 MiB: two
# local and four remote ones (exported over TCP on 127.0.0.1 by a second daemon of one
# reactor: on a 2-core machine a daemon per member would only fight for the cores), against
# six local ones; then with one remote member served by nbdkit with its delay filter (2 ms a
# request) instead. `uraid bench`, one reactor, SECS seconds a row (default 3); 4 KiB
# randread/randwrite at QD32, 1 MiB read/write at QD8; the rebuild of a remote member onto a
# remote spare against a local one onto a local spare. Then the NBD export's large requests:
# fio's nbd engine against the daemon over TCP and against nbdkit's memory plugin.
# Usage: scripts/bench-remote.sh [path/to/uraid]
set -euo pipefail
uraid=$(realpath "${1:-build/uraid}")
secs=${SECS:-3}
dir=$(mktemp -d /tmp/uraid-bench-remote-XXXXXX)
daemon= kit=
cleanup() {
	[ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	[ -n "$kit" ] && kill "$kit" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
for tool in fio nbdkit; do
	command -v $tool >/dev/null || {
		echo "bench-remote: $tool is missing (scripts/install-deps.sh installs it)" >&2
		exit 1
	}
done
port=$((30000 + $$ % 20000))

ram() { echo "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"$1\",\"num_blocks\":65536,\"block_size\":4096}}"; }
nbd() { echo "{\"method\":\"bdev_nbd_attach\",\"params\":{\"name\":\"$1\",\"uri\":\"$2\"}}"; }
cfg() { # FILE ENTRIES...
	local f=$1 IFS=,
	shift
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]}]}\n' "$*" >"$f"
}
r6='{"method":"bdev_raid_create","params":{"name":"r6","raid_level":"raid6","strip_size_kb":64,"base_bdevs":["a0","a1","m2","m3","m4","m5"]}}'

cfg "$dir/ex.json" "$(ram D2)" "$(ram D3)" "$(ram D4)" "$(ram D5)" "$(ram D6)"
"$uraid" serve --config "$dir/ex.json" --no-save-config --rpc-socket "$dir/ex.sock" \
	--reactors 1 >"$dir/ex.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
	"$uraid" rpc -s "$dir/ex.sock" -t 5 uraid_get_version >/dev/null 2>&1 && break
	sleep 0.1
done
for i in 2 3 4 5 6; do
	"$uraid" export -s "$dir/ex.sock" "D$i" "127.0.0.1:$((port + i))" >/dev/null
done
nbdkit -p "$((port + 9))" -P "$dir/kit.pid" --filter=delay memory 256M delay-read=2ms \
	delay-write=2ms
kit=$(cat "$dir/kit.pid")

cfg "$dir/local.json" "$(ram a0)" "$(ram a1)" "$(ram m2)" "$(ram m3)" "$(ram m4)" "$(ram m5)" "$r6"
remote=()
for i in 2 3 4 5; do remote+=("$(nbd "m$i" "nbd://127.0.0.1:$((port + i))/D$i")"); done
cfg "$dir/remote.json" "$(ram a0)" "$(ram a1)" "${remote[@]}" "$r6"
cfg "$dir/slow.json" "$(ram a0)" "$(ram a1)" "${remote[@]:0:3}" \
	"$(nbd m5 "nbd://127.0.0.1:$((port + 9))/")" "$r6"

run() { # CONFIG QD SIZE WORKLOAD -> "IOPS MiB/s"
	"$uraid" bench --json "$1" -T r6 -q "$2" -o "$3" -w "$4" -t "$secs" 2>/dev/null |
		awk '$1 == "Total" { print $2 " " $3 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rebuild() { # CONFIG -> MiB/s of the rebuild of slot 2 onto the spare m6
	"$uraid" bench-rebuild --json "$1" -T r6 --spare m6 --fail 2 2>/dev/null |
		awk '$1 == "rebuild" { print $9 }'
}

echo "| workload | local members | 4 remote members (TCP) | ratio | one of them 2 ms slower (nbdkit) | ratio |"
echo "|---|---:|---:|---:|---:|---:|"
while read -r qd size wl what unit; do
	read -r li lm <<<"$(run "$dir/local.json" "$qd" "$size" "$wl")"
	read -r ri rm <<<"$(run "$dir/remote.json" "$qd" "$size" "$wl")"
	read -r si sm <<<"$(run "$dir/slow.json" "$qd" "$size" "$wl")"
	if [ "$unit" = iops ]; then
		echo "| $(echo "$what" | tr _ " ") | $(awk -v a="$li" 'BEGIN{printf "%.0f", a}') IOPS | $(awk -v a="$ri" 'BEGIN{printf "%.0f", a}') IOPS | $(ratio "$ri" "$li") | $(awk -v a="$si" 'BEGIN{printf "%.0f", a}') IOPS | $(ratio "$si" "$li") |"
	else
		echo "| $(echo "$what" | tr _ " ") | $lm MiB/s | $rm MiB/s | $(ratio "$rm" "$lm") | $sm MiB/s | $(ratio "$sm" "$lm") |"
	fi
done <<'ROWS'
32 4k randread 4_KiB_randread_QD32 iops
32 4k randwrite 4_KiB_randwrite_QD32 iops
8 1m read 1_MiB_read_QD8 mib
8 1m write 1_MiB_write_QD8 mib
ROWS

cfg "$dir/local-spare.json" "$(ram a0)" "$(ram a1)" "$(ram m2)" "$(ram m3)" "$(ram m4)" "$(ram m5)" \
	"$(ram m6)" "$r6"
cfg "$dir/remote-spare.json" "$(ram a0)" "$(ram a1)" "${remote[@]}" \
	"$(nbd m6 "nbd://127.0.0.1:$((port + 6))/D6")" "$r6"
lr=$(rebuild "$dir/local-spare.json")
rr=$(rebuild "$dir/remote-spare.json")
echo "| rebuild of slot 2 onto a spare (the array filled first) | $lr MiB/s | $rr MiB/s (remote member onto a remote spare) | $(ratio "$rr" "$lr") | | |"

echo
echo "The export's large requests over TCP (fio's nbd engine, QD8, one connection):"
echo
echo "| request | uraid serve | nbdkit memory | ratio |"
echo "|---|---:|---:|---:|"
kill "$kit" 2>/dev/null
kit=
nbdkit -p "$((port + 9))" -P "$dir/kit.pid" memory 256M
kit=$(cat "$dir/kit.pid")
fio_bw() { # URI BS RW -> MiB/s
	fio --name=b --ioengine=nbd --uri="$1" --rw="$3" --bs="$2" --iodepth=8 --size=256M \
		--time_based --runtime="$secs" --output-format=json 2>/dev/null |
		sed -n '/^{/,$p' | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print("%.0f" % ((j["read"]["bw"] + j["write"]["bw"]) / 1024))'
}
for bs in 256k 1m; do
	for rw in randread randwrite; do
		u=$(fio_bw "nbd://127.0.0.1:$((port + 2))/D2" $bs $rw)
		k=$(fio_bw "nbd://127.0.0.1:$((port + 9))/" $bs $rw)
		echo "| $bs $rw | $u MiB/s | $k MiB/s | $(ratio "$u" "$k") |"
	done
done
