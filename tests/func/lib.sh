# SPDX-License-Identifier: BSD-3-Clause
# Shared helper of the functional tests: a scratch directory removed on exit, pass/fail
# bookkeeping, and the closing line "N passed, N failed, N skipped".
set -u
URAID=${URAID_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/uraid}
T_PASS=0 T_FAIL=0 T_SKIP=0
T_DIR=$(mktemp -d /tmp/uraid-func-XXXXXX)
t_cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$T_DIR"; }
trap t_cleanup EXIT
# A test stopped by a signal still runs its EXIT trap (bash skips it on a signal it does not
# trap): run-tests.sh's timeout sends TERM to the test's process group, and its daemons,
# namespaces, loop devices and scratch directory go as on a normal exit. Scripts replace the
# EXIT trap with their own cleanup; these stay.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

t_pass() { T_PASS=$((T_PASS + 1)); echo "ok   $1"; }
# t_fail NAME [WHY], t_skip NAME [WHY]
t_fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL $1${2:+: $2}"; }
t_skip() { T_SKIP=$((T_SKIP + 1)); echo "skip $1${2:+: $2}"; }
t_done() {
	echo "$T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
	[ "$T_FAIL" -eq 0 ]
}

# t_cfg FILE METHOD_JSON... : write an SPDK-style config with these bdev methods.
t_cfg() {
	local f=$1; shift
	local IFS=,
	printf '{"subsystems":[{"subsystem":"bdev","config":[%s]}]}\n' "$*" >"$f"
}

# t_files DIR SIZE_MB I...: bdev_uring_create calls, comma-separated for t_cfg, for bdevs
# F<I> over the files DIR/f<I>.img (created sparse, SIZE_MB each), in the order given.
t_files() {
	local dir=$1 mb=$2 out=() i
	shift 2
	for i in "$@"; do
		out+=("{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"F$i\",\"filename\":\"$dir/f$i.img\",\"size_mb\":$mb}}")
	done
	local IFS=,
	echo "${out[*]}"
}

# --- a daemon under test: set SOCK, then start_daemon CONFIG [ARGS...]; stop_daemon in a trap.
PID=
# stop_pid VAR: stop the background process whose pid the variable VAR holds (continued
# first, should a test have stopped it), wait for it, and empty VAR.
stop_pid() {
	local pid=${!1}
	if [ -n "$pid" ]; then
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		printf -v "$1" '%s' ''
	fi
}
stop_daemon() { stop_pid PID; }

start_daemon() { # CONFIG [ARGS...]
	local cfg=$1; shift
	"$URAID" serve --config "$cfg" --rpc-socket "$SOCK" --reactors 2 "$@" \
		>>"$T_DIR/serve.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do
		[ -S "$SOCK" ] && "$URAID" rpc -s "$SOCK" -t 5 uraid_get_version >/dev/null 2>&1 &&
			return 0
		sleep 0.1
	done
	return 1
}
rpc() { "$URAID" rpc -s "$SOCK" -t 30 "$@"; }
# wait_rpc SOCKET: until a daemon answers on SOCKET (10 s at most); 1 if it never does.
wait_rpc() {
	for _ in $(seq 100); do
		"$URAID" rpc -s "$1" -t 5 uraid_get_version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# --- hosts as network namespaces (root): netns_hosts SWITCH PREFIX NET HOST...: a bridge in
# the namespace SWITCH (created by the caller, so that its failure can mean skip), and per
# HOST a namespace PREFIX<HOST> joined to it by a veth pair, eth0 addressed NET.<1, 2, ...>/24
# in the order given. netns_del SWITCH PREFIX HOST... removes them.
netns_hosts() {
	local sw=$1 prefix=$2 net=$3 i=1 h n
	shift 3
	ip -n "$sw" link add br0 type bridge
	ip -n "$sw" link set br0 up
	for h in "$@"; do
		n=$prefix$h
		ip netns add "$n"
		ip link add "v$n" type veth peer name eth0 netns "$n"
		ip link set "v$n" netns "$sw"
		ip -n "$sw" link set "v$n" master br0 up
		ip -n "$n" addr add "$net.$i/24" dev eth0
		ip -n "$n" link set eth0 up
		ip -n "$n" link set lo up
		i=$((i + 1))
	done
}
netns_del() {
	local sw=$1 prefix=$2 h
	shift 2
	for h in "$@"; do ip netns del "$prefix$h" 2>/dev/null; done
	ip netns del "$sw" 2>/dev/null
}
check() { # NAME EXPECTED_RC REGEX COMMAND...
	local name=$1 want=$2 pat=$3 out rc; shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq "$want" ] && echo "$out" | grep -qE -- "$pat"; then
		t_pass "$name"
	else
		t_fail "$name" "rc=$rc: $(echo "$out" | tail -n 6)"
	fi
}
alive() { rpc uraid_get_version 2>&1 | grep -q '"uraid v'; }
# nbd_reads_back URI FILE: the export's first bytes are FILE's.
nbd_reads_back() {
	nbdcopy "$1" - | head -c "$(stat -c %s "$2")" | cmp -s - "$2"
}
# need_tools TOOL...: each must be installed (scripts/install-deps.sh installs them), else a
# failure and the test ends here.
need_tools() {
	local tool
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null; then
			t_fail "$tool is installed" "scripts/install-deps.sh installs it"
			t_done
			exit
		fi
	done
}
# need_nbd_tools WHAT: nbdcopy and nbdinfo (libnbd-bin), else WHAT is counted skipped with
# the reason and the test ends here.
need_nbd_tools() {
	local tool
	for tool in nbdcopy nbdinfo; do
		if ! command -v $tool >/dev/null; then
			t_skip "$1" "$tool is not installed (libnbd-bin)"
			t_done
			exit
		fi
	done
}
# nbd_write_twice URI BYTES: two passes of random data over the export (DIR/a.bin, then
# DIR/b.bin, each flushed), then it must read back as the second.
nbd_write_twice() {
	head -c "$2" /dev/urandom >"$T_DIR/a.bin"
	head -c "$2" /dev/urandom >"$T_DIR/b.bin"
	if nbdcopy --flush "$T_DIR/a.bin" "$1" && nbdcopy --flush "$T_DIR/b.bin" "$1" &&
		nbdcopy "$1" - | cmp -s - "$T_DIR/b.bin"; then
		t_pass "written whole twice over NBD, read back identical"
	else
		t_fail "write twice and read back" "the data differ"
	fi
}
# kill_daemon FILE...: SIGKILL the daemon, then wait (5 s at most) until the files it had
# open are unlocked: the kernel lets go of a killed process's file locks once its io_uring
# is torn down, which may be a moment after the process is gone.
kill_daemon() {
	local f ok
	[ -n "$PID" ] && kill -KILL "$PID" && wait "$PID" 2>/dev/null
	PID=
	for _ in $(seq 50); do
		ok=1
		for f in "$@"; do flock -n "$f" true || ok=; done
		[ -n "$ok" ] && return 0
		sleep 0.1
	done
	return 1
}
# refused METHOD WHAT PATTERN PARAMS: the call fails, and its message matches PATTERN.
refused() {
	local out
	out=$(rpc "$1" "$4" 2>&1)
	if [ $? -ne 0 ] && echo "$out" | grep -qi -- "$3"; then
		t_pass "refused: $2"
	else
		t_fail "bad params ($2)" "$out"
	fi
}
