# SPDX-License-Identifier: BSD-3-Clause
# Shared helper of the functional tests: a scratch directory removed on exit, pass/fail
# bookkeeping, and the closing line "N passed, N failed, N skipped".
set -u
URAID=${URAID_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/uraid}
T_PASS=0 T_FAIL=0 T_SKIP=0
T_DIR=$(mktemp -d /tmp/uraid-func-XXXXXX)
t_cleanup() { rm -rf "$T_DIR"; }
trap t_cleanup EXIT

t_pass() { T_PASS=$((T_PASS + 1)); echo "ok   $1"; }
t_fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL $1: $2"; }
t_skip() { T_SKIP=$((T_SKIP + 1)); echo "skip $1: $2"; }
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
