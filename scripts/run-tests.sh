#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Runs every unit test program (and, with URAID_SAN_UNIT=DIR, the same built with ASan and UBSan
# in DIR) and functional test script (and, with URAID_TSAN_BIN=PATH, the functional tests again
# with that daemon built with ThreadSanitizer), each under a timeout, and sums their
# closing lines into one: "N passed, N failed, N skipped". A program that dies without its
# closing line counts as one failure. A ThreadSanitizer report from any process a test starts
# fails the test, whatever the process's exit status: reports go to files (log_path), which
# are counted and shown. URAID_TIME_SCALE=K multiplies every time limit by K: a
# sanitized build runs several times slower (make check SAN=1 sets 4, TSAN=1 sets 8).
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export URAID_BIN="$root/$build/uraid"
export URAID_BUILD="$root/$build"
scale=${URAID_TIME_SCALE:-1}
case $scale in
[1-9] | [1-9][0-9]) ;;
*) echo "URAID_TIME_SCALE must be a whole number from 1 to 99, not '$scale'" >&2; exit 2 ;;
esac
logdir="$root/$build/test-logs"
tsandir="$logdir/tsan"
rm -rf "$tsandir"
mkdir -p "$logdir" "$tsandir"

P=0 F=0 S=0
run_one() {
	local name=$1 limit=$2; shift 2
	local log="$logdir/$name.log" rc line p f s races
	TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS }log_path=$tsandir/$name" \
		timeout -k 5 $((limit * scale)) "$@" >"$log" 2>&1
	rc=$?
	races=$(cat "$tsandir/$name".* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer')
	if [ "$races" -ne 0 ]; then
		F=$((F + 1))
		printf '  %-28s FAILED: %d ThreadSanitizer reports (%s)\n' "$name" "$races" \
			"$tsandir/$name.*"
		grep -h '^SUMMARY: ThreadSanitizer' "$tsandir/$name".* | sort | uniq -c | sed 's/^/    | /'
	fi
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		if [ $rc -eq 77 ]; then S=$((S + 1)); printf '  %-28s skipped\n' "$name"; return; fi
		F=$((F + 1))
		printf '  %-28s FAILED (exit %d, no summary; see %s)\n' "$name" "$rc" "$log"
		tail -n 20 "$log" | sed 's/^/    | /'
		return
	fi
	read -r p _ f _ s _ <<<"${line//,/}"
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ "$f" -eq 0 ]; then f=1; fi
	P=$((P + p)) F=$((F + f)) S=$((S + s))
	printf '  %-28s %s\n' "$name" "$line"
	if [ "$f" -ne 0 ]; then
		grep -E 'FAIL|failed|error' "$log" | head -n 30 | sed 's/^/    | /'
	fi
}

# run_units DIR PREFIX: every unit test program built in DIR.
run_units() {
	local t
	for t in "$1"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		run_one "$2$(basename "$t")" 300 "$t"
	done
}
# run_scripts DIR PREFIX LIMIT [VAR=VALUE...]: every test script in DIR, with those variables.
run_scripts() {
	local dir=$1 prefix=$2 limit=$3 t
	shift 3
	for t in "$dir"/test_*.sh; do
		[ -f "$t" ] || continue
		run_one "$prefix$(basename "$t" .sh)" "$limit" env "$@" bash "$t"
	done
}

echo "unit tests ($build):"
run_units "$build" ""
# The unit tests again as built with ASan and UBSan, when make check names that build.
if [ -n "${URAID_SAN_UNIT:-}" ]; then
	echo "unit tests under ASan and UBSan ($URAID_SAN_UNIT):"
	run_units "$URAID_SAN_UNIT" san_
fi
echo "fuzz corpus replays:"
for t in "$build"/tests/fuzz/*_replay; do
	[ -x "$t" ] || continue
	name=$(basename "$t" _replay)
	run_one "$name" 300 "$t" "tests/fuzz/corpus/${name#fuzz_}"
done
echo "functional tests:"
run_scripts tests/func "" 300
# The functional tests again with the daemon and CLI built with ThreadSanitizer, when make
# check names that binary: the control thread, the RPC server and the reactors meet there.
if [ -n "${URAID_TSAN_BIN:-}" ]; then
	echo "functional tests under ThreadSanitizer ($URAID_TSAN_BIN):"
	run_scripts tests/func tsan_ 600 URAID_BIN="$root/$URAID_TSAN_BIN"
fi
echo "multi-host tests (network namespaces, as root):"
run_scripts tests/net net_ 300
echo "SPDK module tests (SPDK_DIR=${SPDK_DIR:-/opt/spdk}):"
run_scripts tests/spdk spdk_ 300
echo "crash tests:"
run_scripts tests/crash crash_ 600
echo "$P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
