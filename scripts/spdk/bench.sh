#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# SPDK side by side: SPDK's bdevperf on SPDK's own bdevs and raid module, uraid inside SPDK
# (bdevperf over the module), and the standalone uraid (uraid bench) on the same configs, same
# machine, same run. Members are malloc (or null) bdevs of MEMBER_MB (128) MiB with 4 KiB
# blocks; each cell is the best of RUNS (2) runs of SECONDS (3) s, the three taking turns; one
# core, but for the rows marked "2 cores" (bdevperf -C, uraid bench -m 0x3, every core on the
# bdev).
#
#   scripts/spdk/bench.sh [build/uraid]          (SPDK_DIR=/opt/spdk, root for hugepages)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
URAID=${1:-$root/build/uraid}
SPDK_DIR=${SPDK_DIR:-/opt/spdk}
MODULE=${MODULE:-$(dirname "$URAID")/spdk/libspdk_bdev_uraid.so}
MB=${MEMBER_MB:-128} RUNS=${RUNS:-2} SECS=${SECONDS_PER_RUN:-3}
BDEVPERF=$SPDK_DIR/build/examples/bdevperf
for f in "$BDEVPERF" "$MODULE" "$URAID"; do
	[ -e "$f" ] || { echo "bench-spdk: $f is missing (make spdk SPDK_DIR=$SPDK_DIR)"; exit 2; }
done
have=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)
[ "${have:-0}" -ge 1024 ] || echo 1024 >/proc/sys/vm/nr_hugepages
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
dir=$(mktemp -d /tmp/uraid-bench-spdk-XXXXXX)
trap 'rm -rf "$dir"' EXIT

# cfg FILE METHOD NAME LEVEL STRIP N [EXTRA_PARAMS_JSON [EXTRA_CALL_JSON]]: an array over N
# members of type MEMBERS (bdev_malloc_create, or bdev_null_create); METHOD "" for the member
# m0 alone (named NAME).
cfg() {
	local f=$1 method=$2 name=$3 level=${4:-} strip=${5:-} n=${6:-0} extra=${7:-} call=${8:-} i
	local calls=() bdevs=()
	local mk=${MEMBERS:-bdev_malloc_create}
	if [ -z "$method" ]; then
		printf '{"subsystems":[{"subsystem":"bdev","config":[{"method":"%s","params":{"name":"%s","num_blocks":%d,"block_size":4096}}]}]}\n' \
			"$mk" "$name" $((MB * 256)) >"$f"
		return
	fi
	for ((i = 0; i < n; i++)); do
		calls+=("{\"method\":\"$mk\",\"params\":{\"name\":\"m$i\",\"num_blocks\":$((MB * 256)),\"block_size\":4096}}")
		bdevs+=("\"m$i\"")
	done
	local IFS=,
	calls+=("{\"method\":\"$method\",\"params\":{\"name\":\"$name\",\"raid_level\":\"$level\",\"strip_size_kb\":$strip,\"base_bdevs\":[${bdevs[*]}]${extra:+,$extra}}}")
	[ -n "$call" ] && calls+=("$call")
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]}]}\n' "${calls[*]}" >"$f"
}

CORES=0x1 EVERY=
t_bp() { # CONFIG PRELOAD ARGS... -> IOPS (bdevperf's Total line)
	local c=$1 pre=$2; shift 2
	# shellcheck disable=SC2086
	timeout 60 env ${pre:+LD_PRELOAD=$pre} "$BDEVPERF" --json "$c" -m "$CORES" $EVERY -u \
		-t "$SECS" "$@" 2>&1 | tr '\r' '\n' | awk '/^ *Total *:/ {v = int($3)} END {print v + 0}'
}
t_ub() { # CONFIG ARGS... -> IOPS (uraid bench)
	local c=$1; shift
	timeout 60 "$URAID" bench --json "$c" -m "$CORES" -t "$SECS" --output json "$@" 2>/dev/null |
		python3 -c 'import json,sys; print(int(json.load(sys.stdin)["total"]["iops"]))' 2>/dev/null ||
		echo 0
}
t_best() { [ -n "$1" ] && [ "$1" -gt "$2" ] && echo "$1" || echo "$2"; }
t_ratio() { python3 -c "print('%.2f' % ($1 / $2) if $2 else '-')"; }
t_fmt() { python3 -c "v=$1; print('%.3f M' % (v/1e6) if v >= 1e6 else '%.1f k' % (v/1e3))"; }

printf '| workload | SPDK | uraid in SPDK | in SPDK / SPDK | uraid standalone | standalone / SPDK |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
# cells LABEL ARGS [KIND]: the three configs $dir/{s,m,u}.json (s or m absent: that column is
# "-"), taking turns RUNS times, the best of each. KIND is t (throughput: IOPS, the most; ratios
# ours over SPDK's) or l (latency: "p50 p99", the least; ratios SPDK's over ours): above 1 is
# better than SPDK either way.
cells() {
	local label=$1 args=$2 kind=${3:-t} s="" m="" u="" i
	for ((i = 0; i < RUNS; i++)); do
		# shellcheck disable=SC2086
		{
			[ -f "$dir/s.json" ] && s=$("${kind}_best" "$s" "$("${kind}_bp" "$dir/s.json" "" -T r $args)")
			[ -f "$dir/m.json" ] && m=$("${kind}_best" "$m" "$("${kind}_bp" "$dir/m.json" "$MODULE" -T r $args)")
			u=$("${kind}_best" "$u" "$("${kind}_ub" "$dir/u.json" -T r $args)")
		}
	done
	printf '| %s | %s | %s | %s | %s | %s |\n' "$label" \
		"$([ -f "$dir/s.json" ] && "${kind}_fmt" "$s" || echo -)" \
		"$([ -f "$dir/m.json" ] && "${kind}_fmt" "$m" || echo -)" \
		"$([ -f "$dir/s.json" ] && [ -f "$dir/m.json" ] && "${kind}_ratio" "$m" "$s" || echo -)" \
		"$("${kind}_fmt" "$u")" "$([ -f "$dir/s.json" ] && "${kind}_ratio" "$u" "$s" || echo -)"
}
# configs LEVEL_SPDK LEVEL_OURS STRIP N [OUR_EXTRA [OUR_CALL_SPDK OUR_CALL_NATIVE]]: the array
# for SPDK's raid module (none if LEVEL_SPDK is ""), for the module and for uraid standalone.
configs() {
	local sl=$1 ol=$2 strip=$3 n=$4 extra=${5:-} callm=${6:-} calln=${7:-}
	rm -f "$dir/s.json" "$dir/m.json"
	if [ -n "$sl" ]; then cfg "$dir/s.json" bdev_raid_create r "$sl" "$strip" "$n"; fi
	cfg "$dir/m.json" bdev_uraid_create r "$ol" "$strip" "$n" "$extra" "$callm"
	cfg "$dir/u.json" bdev_raid_create r "$ol" "$strip" "$n" "$extra" "$calln"
}
# The member bdev alone (SPDK's and ours; no module column).
plain_configs() {
	rm -f "$dir/m.json"
	cfg "$dir/s.json" "" r
	cp "$dir/s.json" "$dir/u.json"
}
# row LABEL LEVEL_SPDK LEVEL_OURS STRIP N BDEVPERF_ARGS [OUR_EXTRA [OUR_CALL_SPDK OUR_CALL_NATIVE]]
row() {
	configs "$2" "$3" "$4" "$5" "${7:-}" "${8:-}" "${9:-}"
	cells "$1" "$6"
}
# plain LABEL ARGS
plain() {
	plain_configs
	cells "$1" "$2"
}
# limit LABEL IO_BYTES ARGS: what one core does alone for the row above it (uraid bench
# --memcpy, --stripe for full stripes over ram, --xor over null), the best of RUNS, in I/Os
# of IO_BYTES per second, in the standalone column.
limit() {
	local best=0 v i
	for ((i = 0; i < RUNS; i++)); do
		# shellcheck disable=SC2086
		v=$("$URAID" bench $3 -t "$SECS" 2>/dev/null |
			awk -v b="$2" '{ for (i = 2; i <= NF; i++) if ($i == "MiB/s") v = $(i - 1) }
				END { printf "%d", v * 1048576 / b }')
		best=$(t_best "$best" "$v")
	done
	printf '| %s | - | - | - | %s | - |\n' "$1" "$(t_fmt "$best")"
}
q128="-q 128 -o 4096"
MEMBERS=bdev_null_create plain "null 4K randread QD128" "$q128 -w randread"
plain "malloc 4K randread QD128" "$q128 -w randread"
# The small-copy limits start each place's first lines 4 pieces ahead, as ram does at submit.
limit "limit of the row above: its copies alone, 4K from random places of 128 MiB" 4096 \
	"--memcpy -o 4k -w randread --ahead 4 -q 128"
plain "malloc 4K randwrite QD128" "$q128 -w randwrite"
limit "limit of the row above: its copies alone, 4K to random places of 128 MiB" 4096 \
	"--memcpy -o 4k -w randwrite --ahead 4 -q 128"
row "raid0 x4 4K randread QD128" raid0 raid0 64 4 "$q128 -w randread"
row "raid0 x4 4K randwrite QD128" raid0 raid0 64 4 "$q128 -w randwrite"
row "raid0 x4 128K write QD32" raid0 raid0 64 4 "-q 32 -o 131072 -w write"
limit "reference for the row above: memcpy alone, 128K pieces from and to 1 GiB, both cold" \
	131072 "--memcpy -o 128k"
row "raid1 x2 4K randread QD128" raid1 raid1 0 2 "$q128 -w randread"
row "raid1 x2 4K randwrite QD128" raid1 raid1 0 2 "$q128 -w randwrite"
limit "limit of the row above: its copies alone, 4K to random places of two 128 MiB" 4096 \
	"--memcpy -o 4k -w randwrite --copies 2 --ahead 4 -q 128"
row "raid5f x4 (64K) 4K randread QD128" raid5f raid5f 64 4 "$q128 -w randread"
row "raid5f x4 (64K) 192K full-stripe write QD32" raid5f raid5f 64 4 "-q 32 -o 196608 -w write"
limit "limit of the row above: its copies and xor_gen alone, 3 x 64K and the parity to 4 areas" \
	196608 "--stripe 3 -o 192k -q 32"
MEMBERS=bdev_null_create row "raid0 x4 over null 4K randread QD128" raid0 raid0 64 4 "$q128 -w randread"
MEMBERS=bdev_null_create row "raid1 x2 over null 4K randwrite QD128" raid1 raid1 0 2 "$q128 -w randwrite"
MEMBERS=bdev_null_create row "raid5f x4 over null 192K full-stripe write QD32" raid5f raid5f 64 4 \
	"-q 32 -o 196608 -w write"
limit "limit of the row above: xor_gen alone, 3 x 64K of 32 stripes in turn into one 64K" 196608 \
	"--xor 3 -o 192k -q 32"
row "raid5 x5 4K randwrite QD128 (only uraid)" "" raid5 64 5 "$q128 -w randwrite"
row "raid6 x6 4K randwrite QD128 (only uraid)" "" raid6 64 6 "$q128 -w randwrite"
row "ec 4+2 4K randwrite QD128 (only uraid)" "" ec 64 6 "$q128 -w randwrite" \
	'"data_chunks":4,"parity_chunks":2'
row "raid5 x5 healthy 4K randread QD128 (only uraid)" "" raid5 64 5 "$q128 -w randread"
row "raid5 x5 one failed 4K randread QD128 (only uraid)" "" raid5 64 5 "$q128 -w randread" "" \
	'{"method":"bdev_uraid_fail_base_bdev","params":{"name":"m4"}}' \
	'{"method":"bdev_raid_fail_base_bdev","params":{"name":"m4"}}'
# Two cores: every row above that scales with cores, again with both (bdevperf -C: one job per
# core, each on the whole bdev; uraid bench -m 0x3 likewise); against the 1-core rows above.
CORES=0x3 EVERY=-C plain "2 cores: malloc 4K randread QD128" "$q128 -w randread"
CORES=0x3 EVERY=-C plain "2 cores: malloc 4K randwrite QD128" "$q128 -w randwrite"
CORES=0x3 EVERY=-C row "2 cores: raid0 x4 4K randread QD128" raid0 raid0 64 4 "$q128 -w randread"
CORES=0x3 EVERY=-C row "2 cores: raid0 x4 4K randwrite QD128" raid0 raid0 64 4 "$q128 -w randwrite"
CORES=0x3 EVERY=-C row "2 cores: raid1 x2 4K randwrite QD128" raid1 raid1 0 2 "$q128 -w randwrite"
CORES=0x3 EVERY=-C row "2 cores: raid5f x4 (64K) 4K randread QD128" raid5f raid5f 64 4 \
	"$q128 -w randread"
CORES=0x3 EVERY=-C row "2 cores: raid5 x5 4K randwrite QD128 (only uraid)" "" raid5 64 5 \
	"$q128 -w randwrite"

# --- Latency at QD1: p50 / p99 in microseconds, the lowest of RUNS runs each (lower is better;
# the ratios are SPDK's over ours, so above 1 means faster than SPDK) ---
l_bp() { # CONFIG PRELOAD ARGS... -> "p50 p99" (bdevperf -l's latency summary)
	local c=$1 pre=$2; shift 2
	# shellcheck disable=SC2086
	timeout 60 env ${pre:+LD_PRELOAD=$pre} "$BDEVPERF" --json "$c" -m 0x1 -u -l -t "$SECS" "$@" \
		2>&1 | tr '\r' '\n' | awk '$1 == "50.00000%" && !p50 { p50 = $3 }
			$1 == "99.00000%" && !p99 { p99 = $3 }
			END { gsub(/us/, "", p50); gsub(/us/, "", p99); print (p50 ? p50 : 0), (p99 ? p99 : 0) }'
}
l_ub() { # CONFIG ARGS... -> "p50 p99" (uraid bench)
	local c=$1; shift
	timeout 60 "$URAID" bench --json "$c" -m 0x1 -t "$SECS" --output json "$@" 2>/dev/null |
		python3 -c 'import json,sys; t=json.load(sys.stdin)["total"]; print("%.3f %.3f" % (t["p50_us"], t["p99_us"]))' 2>/dev/null ||
		echo "0 0"
}
l_best() { [ -n "$1" ] && python3 -c "a=[float(x) for x in '$1'.split()]; b=[float(x) for x in '$2'.split()]; print(' '.join('%.3f' % min(x, y) if x and y else '%.3f' % (x or y) for x, y in zip(a, b)))" || echo "$2"; }
l_fmt() { python3 -c "a=[float(x) for x in '$1'.split()]; print('%.2f / %.2f' % tuple(a) if a[0] else '-')"; }
l_ratio() { python3 -c "u=[float(x) for x in '$1'.split()]; s=[float(x) for x in '$2'.split()]; print('%.2f / %.2f' % (s[0] / u[0], s[1] / u[1]) if s[0] and u[0] and u[1] else '-')"; }
echo
printf '| QD1, 4 KiB | SPDK p50 / p99 (us) | uraid in SPDK | SPDK / in SPDK | uraid standalone | SPDK / standalone |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
q1="-q 1 -o 4096"
plain_configs
cells "malloc randread" "$q1 -w randread" l
cells "malloc randwrite" "$q1 -w randwrite" l
configs raid1 raid1 0 2
cells "raid1 x2 randread" "$q1 -w randread" l
cells "raid1 x2 randwrite" "$q1 -w randwrite" l
configs raid5f raid5 64 5
cells "raid5 x5 (SPDK: raid5f x5) randread" "$q1 -w randread" l
configs "" raid5 64 5
cells "raid5 x5 randwrite (SPDK's raid5f takes full stripes only)" "$q1 -w randwrite" l
echo
echo "$(date -u +%F), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), SPDK $(cd "$SPDK_DIR" && git describe --tags 2>/dev/null), one core (but the rows marked 2 cores), best of $RUNS x $SECS s, members $MB MiB"
