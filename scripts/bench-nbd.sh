#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# docs/bench.md section 4: fio's nbd engine against the daemon's NBD export (Unix socket),
# against the same array driven in-process by `uraid bench`, and against nbdkit's memory
# plugin (the reference NBD server) on the same machine, in one run.
#   rows: 4 KiB randread/randwrite at QD32 and QD128, SECS seconds each (default 3)
# The daemon runs one reactor; fio (one job, one connection) runs beside it. A second table:
# several connections (the export advertises multi-conn) to a daemon of two reactors, fio with
# 1, 2 and 4 jobs (a connection each), against nbdkit with the same jobs; medians of REPS rounds,
# with the CPU cores the client (fio) and the server spent, which on a small machine share it.
# Usage: scripts/bench-nbd.sh [path/to/uraid]
set -euo pipefail
uraid=$(realpath "${1:-build/uraid}")
secs=${SECS:-3}
dir=$(mktemp -d /tmp/uraid-bench-nbd-XXXXXX)
daemon= daemon2= nbdkit_pid=
cleanup() {
	[ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
	[ -n "$daemon2" ] && kill -TERM "$daemon2" 2>/dev/null && wait "$daemon2" 2>/dev/null
	[ -n "$nbdkit_pid" ] && kill "$nbdkit_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

for tool in fio nbdkit; do
	command -v $tool >/dev/null || {
		echo "bench-nbd: $tool is missing (scripts/install-deps.sh installs it)" >&2
		exit 1
	}
done

# raid5 over four 256 MiB ram members, and a plain 768 MiB ram bdev (the same size).
ram() { printf '{"method":"bdev_malloc_create","params":{"name":"%s","num_blocks":%s,"block_size":4096}}' "$1" "$2"; }
entries=("$(ram m0 65536)" "$(ram m1 65536)" "$(ram m2 65536)" "$(ram m3 65536)"
	'{"method":"bdev_raid_create","params":{"name":"r5","raid_level":"raid5","strip_size_kb":64,"base_bdevs":["m0","m1","m2","m3"]}}'
	"$(ram ram0 196608)")
(
	IFS=,
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]}]}\n' "${entries[*]}"
) >"$dir/bench.json"
(
	IFS=,
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]},{"subsystem":"nbd","config":[{"method":"nbd_start_disk","params":{"bdev_name":"r5","nbd_device":"%s"}},{"method":"nbd_start_disk","params":{"bdev_name":"ram0","nbd_device":"%s"}}]}]}\n' \
		"${entries[*]}" "$dir/r5.sock" "$dir/ram0.sock"
) >"$dir/serve.json"

"$uraid" serve --config "$dir/serve.json" --rpc-socket "$dir/rpc.sock" --reactors 1 \
	>"$dir/serve.log" 2>&1 &
daemon=$!
nbdkit -f -U "$dir/nbdkit.sock" memory 768M &
nbdkit_pid=$!
for _ in $(seq 100); do
	[ -S "$dir/r5.sock" ] && [ -S "$dir/ram0.sock" ] && [ -S "$dir/nbdkit.sock" ] && break
	sleep 0.1
done

# fio_run URI RW QD JOBS: "IOPS CLIENT" of all jobs together (a connection each), CLIENT the CPU
# cores fio's jobs spent (their user and system time, as fio reports it); "0 0" if fio failed.
fio_run() {
	local out
	out=$(fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs=4k --iodepth="$3" --size=512m \
		--numjobs="$4" --group_reporting --time_based --runtime="$secs" --ramp_time=1 \
		--output-format=terse --terse-version=3 2>/dev/null |
		awk -F';' -v rw="$2" -v jobs="$4" 'NF > 50 {
			sub("%", "", $88); sub("%", "", $89)
			printf "%d %.2f\n", (rw == "randread" ? $8 : $49), ($88 + $89) / 100 * jobs }')
	echo "${out:-0 0}"
}
fio_iops() { # URI RW QD: IOPS of one connection
	fio_run "$1" "$2" "$3" 1 | cut -d' ' -f1
}
# fio_cpu URI RW QD JOBS SERVER_PID: "IOPS CLIENT SERVER", SERVER the CPU cores the server
# process spent on average over the run.
fio_cpu() {
	local t0 t1 s0 s1 out hz
	hz=$(getconf CLK_TCK)
	s0=$(awk '{ print $14 + $15 }' "/proc/$5/stat")
	t0=$(date +%s.%N)
	out=$(fio_run "$1" "$2" "$3" "$4")
	t1=$(date +%s.%N)
	s1=$(awk '{ print $14 + $15 }' "/proc/$5/stat")
	echo "$out" "$(awk -v d="$((s1 - s0))" -v hz="$hz" -v t="$t1" -v t0="$t0" \
		'BEGIN { printf "%.2f", d / hz / (t - t0) }')"
}
inproc_iops() { # RW QD
	"$uraid" bench --json "$dir/bench.json" -T r5 -q "$2" -o 4096 -w "$1" -t "$secs" \
		2>/dev/null | awk '$1 == "r5" { print $3 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
k() { awk -v a="$1" 'BEGIN { printf "%.0f k", a / 1000 }'; }

echo "| workload | raid5 via NBD | raid5 in-process | ratio | ram bdev via NBD | nbdkit memory | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for qd in 32 128; do
	for rw in randread randwrite; do
		nbd=$(fio_iops "nbd+unix:///r5?socket=$dir/r5.sock" $rw $qd)
		ram=$(fio_iops "nbd+unix:///ram0?socket=$dir/ram0.sock" $rw $qd)
		kit=$(fio_iops "nbd+unix:///?socket=$dir/nbdkit.sock" $rw $qd)
		inp=$(inproc_iops $rw $qd)
		echo "| $rw 4 KiB QD$qd | $(k "$nbd") | $(k "$inp") | $(ratio "$nbd" "$inp") | $(k "$ram") | $(k "$kit") | $(ratio "$ram" "$kit") |"
	done
done

# Several connections: the same ram bdev export from a daemon of two reactors (connections go
# to the reactors in turn), fio with JOBS jobs of one connection each, QD32 per connection.
(
	IFS=,
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]},{"subsystem":"nbd","config":[{"method":"nbd_start_disk","params":{"bdev_name":"ram0","nbd_device":"%s"}}]}]}\n' \
		"$(ram ram0 196608)" "$dir/mc.sock"
) >"$dir/serve2.json"
"$uraid" serve --config "$dir/serve2.json" --rpc-socket "$dir/rpc2.sock" --reactors 2 \
	>"$dir/serve2.log" 2>&1 &
daemon2=$!
for _ in $(seq 100); do
	[ -S "$dir/mc.sock" ] && break
	sleep 0.1
done
# The rows of this table decide ratios between them, and the guest's speed drifts within a run:
# REPS rounds (default 3) each measure every row once, ours and nbdkit's in turn, and the table
# gives each row's median.
reps=${REPS:-3}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A ours_runs kit_runs ours_cpu kit_cpu
for _ in $(seq "$reps"); do
	for rw in randread randwrite; do
		for jobs in 1 2 4; do
			read -r iops cl sv < <(fio_cpu "nbd+unix:///ram0?socket=$dir/mc.sock" $rw 32 $jobs "$daemon2")
			ours_runs[$rw$jobs]+=" $iops"
			ours_cpu[$rw$jobs]+=" $cl/$sv"
			read -r iops cl sv < <(fio_cpu "nbd+unix:///?socket=$dir/nbdkit.sock" $rw 32 $jobs "$nbdkit_pid")
			kit_runs[$rw$jobs]+=" $iops"
			kit_cpu[$rw$jobs]+=" $cl/$sv"
		done
	done
done
# The CPU of a row's median round: "client/server" cores.
cpu_of() { # RUNS CPUS
	local runs=($1) cpus=($2) med i
	med=$(echo "$1" | median)
	for i in "${!runs[@]}"; do
		[ "${runs[$i]}" = "$med" ] && echo "${cpus[$i]}" && return
	done
}
echo
echo "| workload | connections | ram bdev via NBD, 2 reactors | vs 1 connection | nbdkit memory | ratio | CPU, ours: client/server | CPU, nbdkit: client/server |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for rw in randread randwrite; do
	one=$(echo "${ours_runs[${rw}1]}" | median)
	for jobs in 1 2 4; do
		ours=$(echo "${ours_runs[$rw$jobs]}" | median)
		kit=$(echo "${kit_runs[$rw$jobs]}" | median)
		echo "| $rw 4 KiB QD32 per connection | $jobs | $(k "$ours") | $(ratio "$ours" "$one") | $(k "$kit") | $(ratio "$ours" "$kit") | $(cpu_of "${ours_runs[$rw$jobs]}" "${ours_cpu[$rw$jobs]}") | $(cpu_of "${kit_runs[$rw$jobs]}" "${kit_cpu[$rw$jobs]}") |"
	done
done
echo
echo "(medians of $reps rounds; CPU in cores, of the median round: fio's jobs as fio reports them,"
echo " the server process over the run with its ramp; each row's runs, ours then nbdkit's:)"
for rw in randread randwrite; do
	for jobs in 1 2 4; do
		echo "  $rw x$jobs:${ours_runs[$rw$jobs]} /${kit_runs[$rw$jobs]}"
	done
done
