#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The benchmark rows of docs/bench.md: 4 KiB random read and write at queue depth 128 on one
# reactor, against the null bdev (uraid's own cost per I/O) and a ram bdev, each run for
# SECONDS (default 5). Prints a Markdown table and the machine it ran on.
set -euo pipefail
uraid=${1:-build/uraid}
secs=${SECONDS_PER_ROW:-5}
cfg=$(mktemp /tmp/uraid-bench-XXXXXX.json)
trap 'rm -f "$cfg"' EXIT
cat >"$cfg" <<'JSON'
{"subsystems":[{"subsystem":"bdev","config":[
 {"method":"bdev_malloc_create","params":{"name":"Malloc0","num_blocks":262144,"block_size":4096}},
 {"method":"bdev_null_create","params":{"name":"Null0","num_blocks":262144,"block_size":4096}}]}]}
JSON

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cpus, $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -r)"
echo
echo "| bdev | workload | IOPS | MiB/s | mean us | p99 us | ns per I/O |"
echo "|---|---|---:|---:|---:|---:|---:|"
for t in Null0 Malloc0; do
	for w in randread randwrite; do
		line=$("$uraid" bench --json "$cfg" -T "$t" -q 128 -o 4096 -w "$w" -t "$secs" 2>/dev/null |
			grep -E "^$t ")
		read -r _ _ iops mibps mean _ p99 _ _ <<<"$line"
		awk -v t="$t" -v w="$w" -v iops="$iops" -v mibps="$mibps" -v mean="$mean" \
			-v p99="$p99" 'BEGIN { printf "| %s | %s 4 KiB QD128 | %.0f | %.0f | %s | %s | %.0f |\n",
				t, w, iops, mibps, mean, p99, 1e9 / iops }'
	done
done
