#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The benchmark tables of docs/bench.md, measured in one run so ratios compare like with like.
#   1. backends: null and ram, 4 KiB QD128 randread/randwrite on one reactor
#   2. arrays over ram members (256 MiB each, strip 64 KiB), one reactor; then two against one
#   3. log-structured arrays (policy log) against raid0 and the same arrays in place; rebuilds
#      over drive models; consistency policies at queue depth
#   4. the NBD export (bench-nbd.sh), and arrays with remote members (bench-remote.sh)
#   5. SPDK side by side (spdk/bench.sh), when an SPDK build is at SPDK_DIR (and root, for its
#      hugepages); else said skipped
# Each row runs SECS seconds (default 3). Usage: scripts/bench.sh [path/to/uraid]
set -euo pipefail
uraid=${1:-build/uraid}
secs=${SECS:-3}
dir=$(mktemp -d /tmp/uraid-bench-XXXXXX)
trap 'rm -rf "$dir"' EXIT

ram() { # NAME BLOCKS
	printf '{"method":"bdev_malloc_create","params":{"name":"%s","num_blocks":%s,"block_size":4096}}' "$1" "$2"
}
cfg() { # FILE ENTRIES...
	local f=$1 IFS=,; shift
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]}]}\n' "$*" >"$f"
}
# An array config: NAME LEVEL N EXTRA [WRAP [FAIL]]: ram members m0..; with WRAP=1 behind
# error bdevs (so healthy and degraded runs share one stack), FAIL = a member index that
# fails every I/O.
array_cfg() {
	local f="$dir/$1-${5:-0}-${6:-}.json" e=() names=() i
	for ((i = 0; i < $3; i++)); do
		e+=("$(ram "m$i" 65536)")
		if [ "${5:-0}" = 1 ]; then
			e+=("{\"method\":\"bdev_error_create\",\"params\":{\"base_name\":\"m$i\"}}")
			names+=("\"EE_m$i\"")
		else
			names+=("\"m$i\"")
		fi
	done
	local IFS=,
	e+=("{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"$1\",\"raid_level\":\"$2\",\"strip_size_kb\":64,\"base_bdevs\":[${names[*]}]$4}}")
	if [ -n "${6:-}" ]; then
		e+=("{\"method\":\"bdev_error_inject_error\",\"params\":{\"name\":\"EE_m$6\",\"io_type\":\"all\",\"error_type\":\"failure\",\"num\":-1}}")
	fi
	cfg "$f" "${e[@]}"
	echo "$f"
}

# run CONFIG TARGET QD SIZE WORKLOAD [BENCH OPTIONS...] -> "IOPS MiB/s mean p99 [WA]"
# (WA: a log-structured array's write amplification, blocks written by users and the
# cleaner over blocks written by users)
run() {
	"$uraid" bench --json "$1" -T "$2" -q "$3" -o "$4" -w "$5" -t "$secs" "${@:6}" 2>/dev/null |
		awk -v t="$2" '$1 == t { r = $3 " " $4 " " $5 " " $7 }
			$1 == t ":" && $2 == "log:" { gsub(/[),]/, "", $13); wa = " " $13 }
			END { print r wa }'
}
# run_total: the same on several reactors (-m MASK first among the options): the Total row
run_total() {
	"$uraid" bench --json "$1" -T "$2" -q "$3" -o "$4" -w "$5" -t "$secs" "${@:6}" 2>/dev/null |
		awk '$1 == "Total" { print $2 " " $3 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
kiops() { awk -v a="$1" 'BEGIN { printf "%.0f k", a / 1000 }'; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB; Linux $(uname -r)"
echo

# --- 1. backends ---
cfg "$dir/single.json" "$(ram Malloc0 262144)" \
	'{"method":"bdev_null_create","params":{"name":"Null0","num_blocks":262144,"block_size":4096}}'
echo "| bdev | workload | IOPS | MiB/s | mean us | p99 us | ns per I/O |"
echo "|---|---|---:|---:|---:|---:|---:|"
declare -A ref
for t in Null0 Malloc0; do
	for w in randread randwrite; do
		read -r iops mibps mean p99 <<<"$(run "$dir/single.json" $t 128 4096 $w)"
		ref[$t-$w]=$iops
		awk -v t=$t -v w=$w -v i="$iops" -v m="$mibps" -v a="$mean" -v p="$p99" \
			'BEGIN { printf "| %s | %s 4 KiB QD128 | %.0f | %.0f | %s | %s | %.0f |\n", t, w, i, m, a, p, 1e9 / i }'
	done
done
echo

# --- 2. arrays ---
memcpy_mibps=$("$uraid" bench --memcpy -o 256k -t "$secs" | awk '{print $4}')
echo "single-core memcpy (256 KiB pieces through 1 GiB): $memcpy_mibps MiB/s"
echo
echo "| array | workload | result | reference (same run) | ratio |"
echo "|---|---|---:|---:|---:|"

r0=$(array_cfg r0 raid0 4 "")
for w in randread randwrite; do
	read -r iops _ <<<"$(run "$r0" r0 128 4096 $w)"
	[ $w = randwrite ] && raid0_w=$iops
	echo "| raid0 x4 | $w 4 KiB QD128 | $(kiops "$iops") IOPS | ram $(kiops "${ref[Malloc0-$w]}") | $(ratio "$iops" "${ref[Malloc0-$w]}") |"
done
r1=$(array_cfg r1 raid1 2 "")
for w in randread randwrite; do
	read -r iops _ <<<"$(run "$r1" r1 128 4096 $w)"
	echo "| raid1 x2 | $w 4 KiB QD128 | $(kiops "$iops") IOPS | ram $(kiops "${ref[Malloc0-$w]}") | $(ratio "$iops" "${ref[Malloc0-$w]}") |"
done

# name level members extra full-stripe-size
while read -r name level n full extra; do
	[ "$extra" = "-" ] && extra=""
	healthy=$(array_cfg "$name" "$level" "$n" "$extra")
	wrapped=$(array_cfg "$name" "$level" "$n" "$extra" 1)
	degraded=$(array_cfg "$name" "$level" "$n" "$extra" 1 0)
	read -r _ mibps _ <<<"$(run "$healthy" "$name" 32 "$full" write)"
	echo "| $name | full-stripe write ($full seq, QD32) | $mibps MiB/s | memcpy $memcpy_mibps MiB/s | $(ratio "$mibps" "$memcpy_mibps") |"
	if [ "$level" = raid5 ]; then
		# The same write's memory work alone: its copies and xor_gen, nothing else.
		lim=$("$uraid" bench --stripe $((n - 1)) -o "$full" -q 32 -t "$secs" |
			awk '{ for (i = 2; i <= NF; i++) if ($i == "MiB/s") v = $(i - 1) } END { print v }')
		echo "| $name | full-stripe write ($full seq, QD32) | $mibps MiB/s | its copies and XOR alone $lim MiB/s | $(ratio "$mibps" "$lim") |"
	fi
	read -r iops _ <<<"$(run "$healthy" "$name" 128 4096 randwrite)"
	echo "| $name | randwrite 4 KiB QD128 (read-modify-write) | $(kiops "$iops") IOPS | raid0 x4 randwrite $(kiops "$raid0_w") | $(ratio "$iops" "$raid0_w") |"
	read -r hr _ <<<"$(run "$wrapped" "$name" 128 4096 randread)"
	read -r dr _ <<<"$(run "$degraded" "$name" 128 4096 randread)"
	echo "| $name | randread 4 KiB QD128, one member failed | $(kiops "$dr") IOPS | healthy $(kiops "$hr") | $(ratio "$dr" "$hr") |"
done <<'ROWS'
raid5 raid5 5 256k -
raid6 raid6 6 256k -
ec8+3 ec 11 512k ,"data_chunks":8,"parity_chunks":3
ROWS

# Two reactors against one: raid0, and raid5 read-modify-write under each policy with a
# superblock's choice (none, bitmap, ppl). A write from the reactor that does not own its
# stripe runs there under a claim (none, bitmap; mirrors too), or goes to the owner (ppl).
echo
echo "| array | workload | 2 reactors | 1 reactor (same run) | ratio |"
echo "|---|---|---:|---:|---:|"
read -r w1 _ <<<"$(run_total "$r0" r0 128 4096 randwrite -m 0x1)"
read -r w2 _ <<<"$(run_total "$r0" r0 128 4096 randwrite -m 0x3)"
echo "| raid0 x4 | randwrite 4 KiB QD128 per reactor | $(kiops "$w2") IOPS | $(kiops "$w1") IOPS | $(ratio "$w2" "$w1") |"
for policy in none bitmap ppl; do
	extra=""
	[ $policy = none ] || extra=",\"superblock\":true,\"consistency_policy\":\"$policy\""
	c=$(array_cfg "raid5-$policy" raid5 5 "$extra")
	read -r w1 _ <<<"$(run_total "$c" "raid5-$policy" 128 4096 randwrite -m 0x1)"
	read -r w2 _ <<<"$(run_total "$c" "raid5-$policy" 128 4096 randwrite -m 0x3)"
	echo "| raid5 x5, policy $policy | randwrite 4 KiB QD128 per reactor | $(kiops "$w2") IOPS | $(kiops "$w1") IOPS | $(ratio "$w2" "$w1") |"
done

# --- 3. log-structured arrays (consistency policy log) ---
echo
echo "Log-structured arrays (superblock, consistency_policy log, 10% over-provisioning):"
echo
echo "| array | workload | result | reference (same run) | ratio |"
echo "|---|---|---:|---:|---:|"
log=',"superblock":true,"consistency_policy":"log"'
while read -r name level n full extra; do
	[ "$extra" = "-" ] && extra=""
	inplace=$(array_cfg "$name" "$level" "$n" "$extra")
	logged=$(array_cfg "log-$name" "$level" "$n" "$extra$log")
	read -r iops _ _ _ wa <<<"$(run "$logged" "log-$name" 128 4096 randwrite)"
	echo "| log $name | randwrite 4 KiB QD128 over the whole array, from empty ($secs s: it wraps, write amplification $wa) | $(kiops "$iops") IOPS | raid0 x4 randwrite $(kiops "$raid0_w") | $(ratio "$iops" "$raid0_w") |"
	read -r lr _ <<<"$(run "$logged" "log-$name" 128 4096 randread --fill 100)"
	read -r ir _ <<<"$(run "$inplace" "$name" 128 4096 randread --fill 100)"
	echo "| log $name | randread 4 KiB QD128, full | $(kiops "$lr") IOPS | in place $(kiops "$ir") | $(ratio "$lr" "$ir") |"
	read -r _ mibps _ <<<"$(run "$logged" "log-$name" 32 "$full" write)"
	echo "| log $name | full-stripe write ($full seq, QD32) | $mibps MiB/s | memcpy $memcpy_mibps MiB/s | $(ratio "$mibps" "$memcpy_mibps") |"
done <<'ROWS'
raid5 raid5 5 256k -
raid6 raid6 6 256k -
ec8+3 ec 11 512k ,"data_chunks":8,"parity_chunks":3
ROWS
logged=$(array_cfg log-raid5 raid5 5 "$log")
inplace=$(array_cfg raid5 raid5 5 "")
read -r ipw _ <<<"$(run "$inplace" raid5 128 4096 randwrite)"
echo "| raid5 (in place) | randwrite 4 KiB QD128 (read-modify-write) | $(kiops "$ipw") IOPS | raid0 x4 randwrite $(kiops "$raid0_w") | $(ratio "$ipw" "$raid0_w") |"
for pct in 50 85; do
	read -r iops _ _ _ wa <<<"$(run "$logged" log-raid5 128 4096 randwrite --fill $pct --span $pct)"
	[ "$pct" = 50 ] && lw1=$iops
	echo "| log raid5 | sustained randwrite 4 KiB QD128 over the first $pct% (filled first), cleaner on: write amplification $wa | $(kiops "$iops") IOPS | raid0 x4 randwrite $(kiops "$raid0_w") | $(ratio "$iops" "$raid0_w") |"
done
while read -r name level n extra; do
	[ "$extra" = "-" ] && extra=""
	other=$(array_cfg "log-$name" "$level" "$n" "$extra$log")
	read -r iops _ _ _ wa <<<"$(run "$other" "log-$name" 128 4096 randwrite --fill 50 --span 50)"
	echo "| log $name | sustained randwrite 4 KiB QD128 over the first 50%, cleaner on: write amplification $wa | $(kiops "$iops") IOPS | raid0 x4 randwrite $(kiops "$raid0_w") | $(ratio "$iops" "$raid0_w") |"
done <<'ROWS'
raid6 raid6 6 -
ec8+3 ec 11 ,"data_chunks":8,"parity_chunks":3
ROWS
# Two reactors (reads on reactor 1 look the map up there): against the same array in place.
read -r lr2 _ <<<"$(run_total "$logged" log-raid5 128 4096 randread -m 0x3 --fill 100)"
read -r ir2 _ <<<"$(run_total "$inplace" raid5 128 4096 randread -m 0x3 --fill 100)"
echo "| log raid5 | randread 4 KiB QD128 per reactor, 2 reactors, full | $(kiops "$lr2") IOPS | in place, 2 reactors $(kiops "$ir2") | $(ratio "$lr2" "$ir2") |"
read -r lw2 _ <<<"$(run_total "$logged" log-raid5 128 4096 randwrite -m 0x3 --fill 50 --span 50)"
read -r rw2 _ <<<"$(run_total "$r0" r0 128 4096 randwrite -m 0x3)"
echo "| log raid5 | sustained randwrite 4 KiB QD128 per reactor over the first 50%, 2 reactors | $(kiops "$lw2") IOPS | raid0 x4, 2 reactors $(kiops "$rw2") | $(ratio "$lw2" "$rw2") |"
echo "| log raid5 | the same, 2 reactors against 1 (each reactor writing through its own lane) | $(kiops "$lw2") IOPS | 1 reactor $(kiops "$lw1") | $(ratio "$lw2" "$lw1") |"

# Over zoned members: the same raid5 x5 over zoned bdevs on the ram members (zones of 4 MiB,
# all writable or 3 MiB of them, the first 8 MiB conventional), against the conventional one.
zoned_cfg() { # NAME CAPACITY_BLOCKS
	local f="$dir/$1.json" e=() names=() i
	for ((i = 0; i < 5; i++)); do
		e+=("$(ram "m$i" 65536)")
		e+=("{\"method\":\"bdev_zone_block_create\",\"params\":{\"name\":\"z$i\",\"base_bdev\":\"m$i\",\"zone_size\":1024,\"zone_capacity\":$2,\"optimal_open_zones\":4,\"conventional_zones\":2}}")
		names+=("\"z$i\"")
	done
	local IFS=,
	e+=("{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"$1\",\"raid_level\":\"raid5\",\"strip_size_kb\":64,\"base_bdevs\":[${names[*]}]$log}}")
	cfg "$f" "${e[@]}"
	echo "$f"
}
for cap in 1024 768; do
	zoned=$(zoned_cfg log-raid5-zoned "$cap")
	what="zoned members (zones of 4 MiB, $((cap * 4 / 1024)) MiB writable)"
	read -r zw _ _ _ wa <<<"$(run "$zoned" log-raid5-zoned 128 4096 randwrite)"
	read -r cw _ <<<"$(run "$logged" log-raid5 128 4096 randwrite)"
	echo "| log raid5 x5, $what | randwrite 4 KiB QD128 over the whole array, from empty (write amplification $wa) | $(kiops "$zw") IOPS | conventional $(kiops "$cw") | $(ratio "$zw" "$cw") |"
	read -r zw _ _ _ wa <<<"$(run "$zoned" log-raid5-zoned 128 4096 randwrite --fill 50 --span 50)"
	read -r cw _ <<<"$(run "$logged" log-raid5 128 4096 randwrite --fill 50 --span 50)"
	echo "| log raid5 x5, $what | sustained randwrite 4 KiB QD128 over the first 50% (write amplification $wa) | $(kiops "$zw") IOPS | conventional $(kiops "$cw") | $(ratio "$zw" "$cw") |"
	read -r zr _ <<<"$(run "$zoned" log-raid5-zoned 128 4096 randread --fill 100)"
	read -r cr _ <<<"$(run "$logged" log-raid5 128 4096 randread --fill 100)"
	echo "| log raid5 x5, $what | randread 4 KiB QD128, full | $(kiops "$zr") IOPS | conventional $(kiops "$cr") | $(ratio "$zr" "$cr") |"
	read -r _ zm _ <<<"$(run "$zoned" log-raid5-zoned 32 256k write)"
	echo "| log raid5 x5, $what | full-stripe write (256 KiB seq, QD32) | $zm MiB/s | memcpy $memcpy_mibps MiB/s | $(ratio "$zm" "$memcpy_mibps") |"
done

# --- 3b. rebuilds over drive models (bdev_drive_create): each member a drive of its own ---
echo
echo "Rebuilds over drive models (1000 MB/s write, 2000 MB/s read, 80 us; 512 MiB members):"
echo
echo "| array | rebuild | spare alone | ratio | 4 KiB randread QD32 during / idle | scrub |"
echo "|---|---:|---:|---:|---:|---:|"
# drive_cfg NAME LEVEL N BLOCKS WRITE_MB_S READ_MB_S LATENCY_US [EXTRA]: N drive members d0..
# over ram bdevs of BLOCKS 4 KiB blocks, and a spare d<N>; EXTRA: more bdev_raid_create params.
drive_cfg() {
	local f="$dir/drive-$1.json" e=() names=() i
	for ((i = 0; i <= $3; i++)); do
		e+=("$(ram "m$i" "$4")")
		e+=("{\"method\":\"bdev_drive_create\",\"params\":{\"name\":\"d$i\",\"base_bdev_name\":\"m$i\",\"read_mb_s\":$6,\"write_mb_s\":$5,\"read_latency_us\":$7,\"write_latency_us\":$7}}")
		[ "$i" -lt "$3" ] && names+=("\"d$i\"")
	done
	local IFS=,
	e+=("{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"$1\",\"raid_level\":\"$2\",\"strip_size_kb\":64,\"base_bdevs\":[${names[*]}],\"superblock\":true${8:-}}}")
	cfg "$f" "${e[@]}"
	echo "$f"
}
while read -r name level n; do
	out=$("$uraid" bench-rebuild --json "$(drive_cfg "$name" "$level" "$n" 131072 1000 2000 80)" \
		-T "$name" --spare "d$n" --load 2>/dev/null)
	echo "$out" | awk -v a="$name x$n" '
		$1 == "rebuild" { r = $9; s = $14; q = $17 }
		$1 == "load" { l = $NF }
		$1 == "scrub" { sc = $(NF - 4) }
		END { gsub(/\)/, "", q); gsub(/\)/, "", l)
			printf "| %s | %s MiB/s | %s MiB/s | %s | %s | %s MiB/s |\n", a, r, s, q, l, sc }'
done <<'ROWS'
raid1 raid1 2
raid5 raid5 5
raid6 raid6 6
ROWS

# --- 3c. time to redundancy: raid6 against draid with a distributed spare ---
# Same drives for every row, slower than this machine rebuilds in memory (the last line shows
# that bound, over drives without limits), so the drives decide, as they would in a pool.
echo
echo "Time to redundancy over drive models (200 MB/s write, 400 MB/s read, 80 us; 128 MiB members):"
echo
echo "| array | redundant again after | vs raid6 x6 | bound (N-1)/(k+m-1) | 4 KiB randread QD32 during / idle | rebalance onto a new member |"
echo "|---|---:|---:|---:|---:|---:|"
base=
while read -r name level n k m extra; do
	out=$("$uraid" bench-rebuild --json "$(drive_cfg "$name" "$level" "$n" 32768 200 400 80 "$extra")" \
		-T "$name" --spare "d$n" --load 2>/dev/null)
	t=$(echo "$out" | awk '$1 == "redundant" { print $4 }')
	[ -z "$base" ] && base=$t
	echo "$out" | awk -v a="$name x$n" -v t="$t" -v b="$base" -v n="$n" -v w=$((k + m)) '
		$1 == "load" { r = $NF; gsub(/\)/, "", r); l = sprintf("%.0f k / %.0f k (%s)", $4 / 1000, $11 / 1000, r) }
		$1 == "rebalance" { rb = $(NF - 4) " s" }
		END { printf "| %s | %.3f s | %.2fx | %.1f | %s | %s |\n", a, t, b / t,
			(n - 1) / (w - 1), l, rb == "" ? "-" : rb }'
done <<'ROWS'
raid6 raid6 6 4 2
draid12 draid 12 4 2 ,"data_chunks":4,"parity_chunks":2,"distributed_spares":1
draid24 draid 24 4 2 ,"data_chunks":4,"parity_chunks":2,"distributed_spares":1
ROWS
out=$("$uraid" bench-rebuild --json "$(drive_cfg raid6-free raid6 6 32768 0 0 0)" -T raid6-free \
	--spare d6 2>/dev/null | awk '$1 == "rebuild" { print $9 }')
echo
echo "(This machine rebuilds raid6 x6 at $out MiB/s over drives without limits: the CPU bound.)"

# --- 3d. consistency policies at queue depth ---
# raid5 x5 small writes under each policy with a superblock, at a shallow and a deep queue: a
# policy's bookkeeping that grows with the updates in flight shows as the deep column falling
# far below the shallow one (128 MiB members, so the log areas are the default size).
echo
echo "Consistency policies at depth (raid5 x5, 128 MiB ram members, 4 KiB randwrite, one reactor):"
echo
echo "| policy | QD8 | QD128 | QD256 | QD256 / QD8 |"
echo "|---|---:|---:|---:|---:|"
while read -r label extra; do
	e=()
	for ((i = 0; i < 5; i++)); do e+=("$(ram "m$i" 32768)"); done
	e+=("{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"p\",\"raid_level\":\"raid5\",\"strip_size_kb\":64,\"base_bdevs\":[\"m0\",\"m1\",\"m2\",\"m3\",\"m4\"],\"superblock\":true$extra}}")
	cfg "$dir/policy.json" "${e[@]}"
	read -r q8 _ <<<"$(run "$dir/policy.json" p 8 4096 randwrite)"
	read -r q128 _ <<<"$(run "$dir/policy.json" p 128 4096 randwrite)"
	read -r q256 _ <<<"$(run "$dir/policy.json" p 256 4096 randwrite)"
	echo "| $label | $(kiops "$q8") | $(kiops "$q128") | $(kiops "$q256") | $(ratio "$q256" "$q8") |"
done <<'ROWS'
none ,"consistency_policy":"none"
bitmap ,"consistency_policy":"bitmap"
ppl ,"consistency_policy":"ppl"
journal-write-through ,"consistency_policy":"journal"
journal-write-back ,"consistency_policy":"journal","journal_mode":"write-back"
ROWS

# --- 4. the NBD export ---
echo
echo "NBD export (fio's nbd engine, Unix socket):"
bash "$(dirname "$0")/bench-nbd.sh" "$uraid"

# --- 4b. remote members ---
echo
echo "Remote members over NBD (bdev_nbd_attach, TCP on 127.0.0.1):"
bash "$(dirname "$0")/bench-remote.sh" "$uraid"

# --- 5. SPDK side by side ---
echo
echo "SPDK side by side (bdevperf on SPDK's bdevs and raid module, and over uraid's module):"
spdk=${SPDK_DIR:-/opt/spdk}
module=$(dirname "$uraid")/spdk/libspdk_bdev_uraid.so
if [ ! -x "$spdk/build/examples/bdevperf" ] || [ ! -f "$module" ]; then
	echo "(SPDK columns skipped: no SPDK build at $spdk, or no module at $module; see docs/spdk.md)"
elif [ "$(id -u)" != 0 ]; then
	echo "(SPDK columns skipped: bdevperf needs root for its hugepages)"
else
	SPDK_DIR=$spdk MODULE=$module bash "$(dirname "$0")/spdk/bench.sh" "$uraid"
fi
