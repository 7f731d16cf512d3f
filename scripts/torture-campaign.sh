#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The torture campaign (make torture): uraid torture over the whole matrix of redundant levels,
# consistency policies, journal modes and placements, and named crash points, each case with a
# fresh random seed, the time split evenly between the cases. One table row per case, the replay
# command of every case that broke a rule, totals per level and policy; exit 1 if any case broke
# a rule (or, for policy none, if it failed to show the write hole it is expected to have).
#
#   scripts/torture-campaign.sh [path/to/uraid]
#   MINUTES=5     the whole campaign's time (wall clock, roughly)
#   JOBS=nproc    cases run side by side (each torture is one thread)
#   CASES=REGEX   only the cases whose name matches (grep -E)
#   LIST=1        print the cases and exit
#   TORTURE_LOG=build/torture/history.tsv   every case's row is appended here (tab-separated,
#                 with the date and the commit), so totals can be summed over many runs
#   TOTALS=1      print those totals per level and policy from TORTURE_LOG and exit
set -u
uraid=${1:-build/uraid}
minutes=${MINUTES:-5}
jobs=${JOBS:-$(nproc)}
filter=${CASES:-}
root=$(cd "$(dirname "$0")/.." && pwd)
log=${TORTURE_LOG:-$root/build/torture/history.tsv}

if [ "${TOTALS:-0}" = 1 ]; then
	if [ ! -s "$log" ]; then
		echo "torture-campaign: no rows in $log yet" >&2
		exit 2
	fi
	# Columns: date case level members policy cycles blocks torn lost violations result seed
	# commit
	printf '%-22s %6s %10s %12s %10s %10s %7s\n' "level policy" cases cuts blocks torn lost \
		broken
	awk -F'\t' '
		$5 != "none" { k = $3 " " $5; runs[k]++; cuts[k] += $6; blocks[k] += $7;
			torn[k] += $8; lost[k] += $9; if ($11 == "BROKEN") bad[k] += 1 }
		END {
			for (k in runs)
				printf "%-22s %6d %10.0f %12.0f %10.0f %10.0f %7d\n", k, runs[k], cuts[k],
					blocks[k], torn[k], lost[k], bad[k]
		}' "$log" | sort
	awk -F'\t' '$5 == "none" { n++; if ($11 == "hole") h++ }
		END { if (n) printf "policy none: the write hole shown in %d of %d cases\n", h, n }' \
		"$log"
	exit 0
fi

case "$minutes" in '' | *[!0-9]*)
	echo "torture-campaign: MINUTES must be a whole number of minutes" >&2; exit 2 ;;
esac
case "$jobs" in '' | *[!0-9]* | 0)
	echo "torture-campaign: JOBS must be a positive number" >&2; exit 2 ;;
esac
if [ "$minutes" -lt 1 ]; then
	echo "torture-campaign: MINUTES must be at least 1" >&2
	exit 2
fi
if [ ! -x "$uraid" ]; then
	echo "torture-campaign: no uraid binary at $uraid (make first)" >&2
	exit 2
fi

# --- the matrix: "name|expected exit|policy|torture arguments" ---
cases=()
add() { cases+=("$1|$2|$3|$4"); }

# Mirrors: the bitmap (members fail under the load, come back and catch up, spares rebuild),
# raid1 2- and 3-way, raid10 over every member count it takes here, odd and even.
add raid1-2-bitmap 0 bitmap "--level raid1 --members 2 --policy bitmap"
add raid1-3-bitmap 0 bitmap "--level raid1 --members 3 --policy bitmap"
for n in 3 4 5 6 7 8; do
	add "raid10-$n-bitmap" 0 bitmap "--level raid10 --members $n --policy bitmap"
done

# Parity levels: every erasure count m = 1..4 (raid5, raid5f, raid6, ec k+m).
parity=(
	"raid5-4|--level raid5 --members 4"
	"raid5f-3|--level raid5f --members 3"
	"raid6-5|--level raid6 --members 5"
	"raid6-4|--level raid6 --members 4"
	"ec-4+1|--level ec --members 5 --data-chunks 4 --parity-chunks 1"
	"ec-4+2|--level ec --members 6 --data-chunks 4 --parity-chunks 2"
	"ec-5+3|--level ec --members 8 --data-chunks 5 --parity-chunks 3"
	"ec-4+4|--level ec --members 8 --data-chunks 4 --parity-chunks 4"
)
for p in "${parity[@]}"; do
	name=${p%%|*} args=${p#*|}
	# Under the bitmap a dirty degraded parity array needs force to start (its documented
	# hole), so members fail only at the checks; ppl and journal take failures under load.
	add "$name-bitmap" 0 bitmap "$args --policy bitmap"
	add "$name-ppl" 0 ppl "$args --policy ppl"
	add "$name-journal" 0 journal "$args --policy journal"
	add "$name-journal-wb" 0 journal-wb "$args --policy journal --write-back"
	add "$name-journal-dev" 0 journal-dev "$args --policy journal --journal-bdev"
	add "$name-journal-dev-wb" 0 journal-dev-wb "$args --policy journal --journal-bdev --write-back"
	add "$name-log" 0 log "$args --policy log"
done
# Log-structured mirrors (members fail and spares rebuild under the load, the cleaner runs).
add raid1-2-log 0 log "--level raid1 --members 2 --policy log"
add raid1-3-log 0 log "--level raid1 --members 3 --policy log"
add raid10-4-log 0 log "--level raid10 --members 4 --policy log"
add raid10-5-log 0 log "--level raid10 --members 5 --policy log"
# ... and over zoned members (raid10 needs a member count the copies divide).
for p in "${parity[@]}"; do
	name=${p%%|*} args=${p#*|}
	add "$name-log-zoned" 0 log "$args --policy log --zoned"
done
add raid1-2-log-zoned 0 log "--level raid1 --members 2 --policy log --zoned"
add raid10-4-log-zoned 0 log "--level raid10 --members 4 --policy log --zoned"

# Declustered parity (draid): stripes narrower than the rows, 1 to 3 parities, 0 to 2
# distributed spares; every policy (log over conventional members).
draid=(
	"draid-8-4+2+1|--level draid --members 8 --data-chunks 4 --parity-chunks 2 --distributed-spares 1"
	"draid-7-3+1+2|--level draid --members 7 --data-chunks 3 --parity-chunks 1 --distributed-spares 2"
	"draid-10-4+3+1|--level draid --members 10 --data-chunks 4 --parity-chunks 3 --distributed-spares 1"
	"draid-6-3+2+0|--level draid --members 6 --data-chunks 3 --parity-chunks 2 --distributed-spares 0"
	"draid-12-4+2+2|--level draid --members 12 --data-chunks 4 --parity-chunks 2 --distributed-spares 2 --member-kb 4096"
)
for p in "${draid[@]}"; do
	name=${p%%|*} args=${p#*|}
	add "$name-bitmap" 0 bitmap "$args --policy bitmap"
	add "$name-ppl" 0 ppl "$args --policy ppl"
	add "$name-journal" 0 journal "$args --policy journal"
	add "$name-journal-wb" 0 journal-wb "$args --policy journal --write-back"
	add "$name-journal-dev" 0 journal-dev "$args --policy journal --journal-bdev"
	add "$name-log" 0 log "$args --policy log"
done

# Named crash points: the power goes exactly inside a superblock round, a rebuild window, a
# log write, a write-back acknowledgement, a stripe update or a log checkpoint.
points=(sb-flushed sb-primary rebuild-unit log-written journal-acked stripe-writing log-flushed
	tree-flushed tree-recorded tree-pages)
point_cfgs=(
	"raid5-4-journal|journal|--level raid5 --members 4 --policy journal"
	"raid6-5-ppl|ppl|--level raid6 --members 5 --policy ppl"
	"raid6-4-journal-wb|journal-wb|--level raid6 --members 4 --policy journal --write-back"
	"ec-4+2-journal-dev-wb|journal-dev-wb|--level ec --members 6 --data-chunks 4 --parity-chunks 2 --policy journal --journal-bdev --write-back"
	"raid1-2-bitmap|bitmap|--level raid1 --members 2 --policy bitmap"
	"raid10-5-bitmap|bitmap|--level raid10 --members 5 --policy bitmap"
	"raid6-5-log|log|--level raid6 --members 5 --policy log"
	"raid10-4-log|log|--level raid10 --members 4 --policy log"
	"raid6-5-log-zoned|log|--level raid6 --members 5 --policy log --zoned"
	"draid-8-4+2+1-ppl|ppl|--level draid --members 8 --data-chunks 4 --parity-chunks 2 --distributed-spares 1 --policy ppl"
	"draid-7-3+1+2-ppl|ppl|--level draid --members 7 --data-chunks 3 --parity-chunks 1 --distributed-spares 2 --policy ppl"
	"draid-7-3+1+2-journal-wb|journal-wb|--level draid --members 7 --data-chunks 3 --parity-chunks 1 --distributed-spares 2 --policy journal --write-back"
)
for point in "${points[@]}"; do
	for c in "${point_cfgs[@]}"; do
		IFS='|' read -r name pol args <<<"$c"
		case "$point" in
		journal-acked) [[ $pol == *-wb ]] || continue ;; # only write-back acknowledges early
		# Mirrors keep no log, and their writes are not stripe updates (the point is in
		# the parity path).
		log-* | stripe-writing) [ "$pol" = bitmap ] || [ "$pol" = log ] && continue ;;
		tree-*) [ "$pol" = log ] || continue ;; # the log array's commit and checkpoint
		esac
		add "point-$point-$name" 0 "$pol" "$args --crash-point $point"
	done
done

# Policy none keeps the write hole open: each case must show it (exit 0 with --expect-hole).
add raid1-2-none 0 none "--level raid1 --members 2 --policy none --expect-hole"
add raid10-4-none 0 none "--level raid10 --members 4 --policy none --expect-hole"
add raid5-4-none 0 none "--level raid5 --members 4 --policy none --expect-hole"
add raid6-5-none 0 none "--level raid6 --members 5 --policy none --expect-hole"
add ec-4+2-none 0 none "--level ec --members 6 --data-chunks 4 --parity-chunks 2 --policy none --expect-hole"
add draid-8-4+2+1-none 0 none "--level draid --members 8 --data-chunks 4 --parity-chunks 2 --distributed-spares 1 --policy none --expect-hole"
# ... and closes it only against power cuts: without them (--no-cut) nothing may be lost, with
# members failing under the load and writes claimed by the reactor that does not own them.
for p in "${parity[@]}" "${draid[0]}"; do
	name=${p%%|*} args=${p#*|}
	add "$name-none-no-cut" 0 none-no-cut "$args --policy none --no-cut"
done
# The bitmap without power cuts: members fail under the load (which a cut would make a dirty
# degraded start), and writes into regions already dirty are claimed.
for p in "${parity[@]}" "${draid[0]}"; do
	name=${p%%|*} args=${p#*|}
	add "$name-bitmap-no-cut" 0 bitmap-no-cut "$args --policy bitmap --no-cut"
done
add raid1-2-none-no-cut 0 none-no-cut "--level raid1 --members 2 --policy none --no-cut"
add raid10-4-none-no-cut 0 none-no-cut "--level raid10 --members 4 --policy none --no-cut"

if [ -n "$filter" ]; then
	kept=()
	for c in "${cases[@]}"; do
		grep -qE -- "$filter" <<<"${c%%|*}" && kept+=("$c")
	done
	cases=("${kept[@]}")
fi
if [ "${#cases[@]}" -eq 0 ]; then
	echo "torture-campaign: no case matches '$filter'" >&2
	exit 2
fi
if [ "${LIST:-0}" = 1 ]; then
	for c in "${cases[@]}"; do
		IFS='|' read -r name _ _ args <<<"$c"
		printf '%-36s uraid torture %s\n' "$name" "$args"
	done
	exit 0
fi

ncases=${#cases[@]}
secs=$((minutes * 60 * jobs / ncases))
[ "$secs" -lt 2 ] && secs=2
dir=$(mktemp -d /tmp/uraid-torture-XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$(dirname "$log")"
echo "torture campaign: $ncases cases, $secs s each, $jobs at a time (about" \
	"$(((ncases * secs + jobs - 1) / jobs / 60 + 1)) min), $uraid"

run_case() { # INDEX
	local name want pol args seed rc
	IFS='|' read -r name want pol args <<<"${cases[$1]}"
	seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
	# shellcheck disable=SC2086
	"$uraid" torture $args --seed "$seed" --seconds "$secs" >"$dir/$1.out" 2>&1
	rc=$?
	echo "$rc $seed" >"$dir/$1.rc"
}

running=0
for ((i = 0; i < ncases; i++)); do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_case "$i" &
	running=$((running + 1))
done
wait

# --- the report ---
fmt='%-42s %-7s %3s %-14s %7s %10s %8s %8s %5s %-6s %-20s %s\n'
printf "$fmt" case level n policy cycles blocks torn lost viol result seed "cut at the point"
broken=0
declare -A tot_cycles tot_viol
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# The tree the binary was built from, as far as the checkout tells.
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] &&
	commit="$commit+changes"
for ((i = 0; i < ncases; i++)); do
	IFS='|' read -r name want pol args <<<"${cases[$i]}"
	read -r rc seed <"$dir/$i.rc"
	out="$dir/$i.out"
	level=$(sed -n 's/.*--level \([^ ]*\).*/\1/p' <<<"$args")
	n=$(sed -n 's/.*--members \([0-9]*\).*/\1/p' <<<"$args")
	sum=$(grep -E '^torture: seed [0-9]+: ' "$out" | tail -n 1)
	read -r cycles blocks torn lost viol < <(sed -nE \
		's/.*: ([0-9]+) cycles, ([0-9]+) blocks checked, [0-9]+ unflushed member writes at the cuts \(([0-9]+) torn, ([0-9]+) lost\), ([0-9]+) violations.*/\1 \2 \3 \4 \5/p' \
		<<<"$sum")
	cycles=${cycles:-0} blocks=${blocks:-0} torn=${torn:-0} lost=${lost:-0} viol=${viol:-?}
	if [ "$rc" -eq "$want" ] && [ -n "$sum" ]; then
		result=ok
		[ "$pol" = none ] && result=hole
	else
		result=BROKEN
		broken=$((broken + 1))
	fi
	# Crash point cases: in how many cycles the power went at the point itself.
	at=$(sed -nE 's/.*the power went there in ([0-9]+) of ([0-9]+) cycles.*/\1 of \2/p' "$out")
	if [[ $args == *--crash-point* ]] && [ "$result" = ok ] && [[ ${at:-0} == 0* ]]; then
		result=BROKEN # the point was never reached: the case proved nothing
		broken=$((broken + 1))
		echo "torture-campaign: the crash point was never reached" >>"$out"
	fi
	printf "$fmt" "$name" "$level" "$n" "$pol" "$cycles" "$blocks" "$torn" "$lost" "$viol" \
		"$result" "$seed" "${at:--}"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$stamp" "$name" "$level" \
		"$n" "$pol" "$cycles" "$blocks" "$torn" "$lost" "$viol" "$result" "$seed" "$commit" \
		>>"$log"
	if [ "$pol" != none ]; then
		key="$level $pol"
		tot_cycles[$key]=$((${tot_cycles[$key]:-0} + cycles))
		[ "$result" = BROKEN ] && tot_viol[$key]=$((${tot_viol[$key]:-0} + 1))
	fi
	if [ "$result" = BROKEN ]; then
		cp "$out" "$dir/broken-$name.out"
	fi
done

echo
echo "power cuts (cycles, for the no-cut policies) per level and policy in this run:"
for key in $(printf '%s\n' "${!tot_cycles[@]}" | tr ' ' '=' | sort); do
	key=${key//=/ }
	what=cuts
	[[ $key == *no-cut ]] && what=cycles
	printf '  %-26s %8s %-6s %s broken cases\n' "$key" "${tot_cycles[$key]}" "$what," \
		"${tot_viol[$key]:-0}"
done
echo "rows appended to $log"
if [ "$broken" -gt 0 ]; then
	echo
	echo "$broken case(s) broke a rule:"
	for ((i = 0; i < ncases; i++)); do
		IFS='|' read -r name want pol args <<<"${cases[$i]}"
		[ -f "$dir/broken-$name.out" ] || continue
		read -r rc seed <"$dir/$i.rc"
		echo "--- $name (exit $rc, expected $want):"
		grep -E '^torture: cycle|^cycle [0-9]+: RULES|^torture-campaign:' \
			"$dir/broken-$name.out" | head -n 8 | sed 's/^/    /'
		if grep -q '^torture: replay with:' "$dir/broken-$name.out"; then
			echo "    replay: $(sed -n 's/^torture: replay with: //p' \
				"$dir/broken-$name.out" | sed "s|^uraid|$uraid|")"
		else
			echo "    replay: $uraid torture $args --seed $seed --seconds $secs" \
				"(no replay line: it ended early; see below)"
			tail -n 5 "$dir/broken-$name.out" | sed 's/^/    | /'
		fi
	done
	exit 1
fi
echo "every case kept the rules"
