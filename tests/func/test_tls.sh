#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TLS on the NBD exports (uraid serve --tls-psk FILE [--tls-require]), with libnbd's tools as
# the clients: offered, a plain client and a TLS one both work; required, a plain client is
# refused before it learns anything (not even the export list), a wrong key fails the
# handshake, and data copied in and out over TLS comes back the same. A second daemon
# attaches the export as a member over nbds:// (bdev_nbd_attach) and builds a mirror on it;
# attaching it in the clear is refused with the reason. Bad option combinations and a key
# file that is not one are refused at start.
. "$(dirname "$0")/lib.sh"

SOCK=$T_DIR/head.sock
TSOCK=$T_DIR/tls.sock
TPID=
stop_tls() {
	if [ -n "$TPID" ]; then
		kill -TERM "$TPID" 2>/dev/null
		wait "$TPID" 2>/dev/null
		TPID=
	fi
}
trap 'stop_daemon; stop_tls; t_cleanup' EXIT
PORT=$((20000 + $$ % 20000))
need_tools nbdinfo nbdcopy

key() { printf '%s:%s\n' "$1" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
key alice >"$T_DIR/keys.psk"
key alice >"$T_DIR/wrong.psk"
echo "not a key file" >"$T_DIR/junk.psk"
t_cfg "$T_DIR/tls.json" \
	'{"method":"bdev_malloc_create","params":{"name":"m0","num_blocks":8192,"block_size":4096}}'
start_tls() { # serve ARGS...: the exporting daemon, m0 on TCP
	"$URAID" serve --config "$T_DIR/tls.json" --no-save-config --rpc-socket "$TSOCK" \
		--reactors 1 --log info "$@" >>"$T_DIR/tls.log" 2>&1 &
	TPID=$!
	for _ in $(seq 100); do
		"$URAID" rpc -s "$TSOCK" -t 5 uraid_get_version >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$URAID" export -s "$TSOCK" m0 "127.0.0.1:$PORT" >/dev/null
}
PLAIN="nbd://127.0.0.1:$PORT/m0"
TLS="nbds://alice@127.0.0.1:$PORT/m0?tls-psk-file=$T_DIR/keys.psk"
WRONG="nbds://alice@127.0.0.1:$PORT/m0?tls-psk-file=$T_DIR/wrong.psk"

# --- bad options ---
check "--tls-require without keys" 2 'tls-require goes with --tls-psk' \
	"$URAID" serve --rpc-socket "$T_DIR/x.sock" --tls-require
check "a key file that does not exist" 1 'tls-psk .*No such file' \
	"$URAID" serve --rpc-socket "$T_DIR/x.sock" --tls-psk "$T_DIR/none.psk"
check "a key file that is not one" 1 'line 1: not identity:hex-key' \
	"$URAID" serve --rpc-socket "$T_DIR/x.sock" --tls-psk "$T_DIR/junk.psk"

# --- offered ---
start_tls --tls-psk "$T_DIR/keys.psk"
check "offered: a plain client works" 0 'without TLS' nbdinfo "$PLAIN"
check "offered: a TLS client works" 0 'with TLS' nbdinfo "$TLS"
stop_tls

# --- required ---
start_tls --tls-psk "$T_DIR/keys.psk" --tls-require
check "required: a plain client is refused" 1 'server replied with error' nbdinfo "$PLAIN"
out=$(nbdinfo --list "nbd://127.0.0.1:$PORT" 2>&1)
if [ $? -ne 0 ] && ! echo "$out" | grep -q 'm0'; then
	t_pass "required: a plain client cannot list the exports"
else
	t_fail "required: a plain client cannot list the exports" "$out"
fi
check "required: a wrong key fails the handshake" 1 'gnutls|TLS|handshake' nbdinfo "$WRONG"
check "required: a TLS client works" 0 'with TLS' nbdinfo "$TLS"
check "required: a TLS client lists the exports" 0 'export="m0"' nbdinfo --list "$TLS"
head -c 8M /dev/urandom >"$T_DIR/d.bin"
if nbdcopy "$T_DIR/d.bin" "$TLS" && nbdcopy "$TLS" "$T_DIR/o.bin" &&
	cmp -s <(head -c 8M "$T_DIR/o.bin") "$T_DIR/d.bin"; then
	t_pass "8 MiB in and out over TLS, the same"
else
	t_fail "8 MiB in and out over TLS, the same" "differs"
fi
check "the server logs the TLS sessions (identity alice)" 0 'TLS on \(alice\)' cat "$T_DIR/tls.log"
check "... and the failed handshake" 0 'TLS handshake failed' cat "$T_DIR/tls.log"

# --- a member over TLS ---
t_cfg "$T_DIR/head.json" \
	'{"method":"bdev_malloc_create","params":{"name":"l0","num_blocks":8192,"block_size":4096}}'
if ! start_daemon "$T_DIR/head.json"; then
	t_fail "head daemon starts" "$(tail -n 5 "$T_DIR/serve.log")"
	t_done
	exit
fi
check "attaching in the clear is refused, with the reason" 1 "cannot attach 'p0': .*requires TLS" \
	rpc bdev_nbd_attach "{\"name\":\"p0\",\"uri\":\"$PLAIN\",\"timeout_ms\":2000}"
check "attaching with the wrong key is refused" 1 "cannot attach 'w0'" \
	rpc bdev_nbd_attach "{\"name\":\"w0\",\"uri\":\"$WRONG\",\"timeout_ms\":2000}"
check "attached over nbds://" 0 '"t0"' \
	rpc bdev_nbd_attach "{\"name\":\"t0\",\"uri\":\"$TLS\",\"timeout_ms\":2000}"
check "a mirror over a local member and the TLS one" 0 true \
	rpc bdev_raid_create '{"name":"m1","raid_level":"raid1","base_bdevs":["l0","t0"],"superblock":true}'
"$URAID" export -s "$SOCK" m1 "$T_DIR/m1.nbd" >/dev/null
M1="nbd+unix:///m1?socket=$T_DIR/m1.nbd"
head -c 16M /dev/urandom >"$T_DIR/m.bin"
nbdcopy --flush "$T_DIR/m.bin" "$M1"
check "the local member fails" 0 'failed' "$URAID" fail -s "$SOCK" l0
if nbdcopy "$M1" - | head -c 16M | cmp -s - "$T_DIR/m.bin"; then
	t_pass "what was written reads back from the member over TLS alone"
else
	t_fail "what was written reads back from the member over TLS alone" "differs"
fi
check "the head is alive at the end" 0 '"uraid v' rpc uraid_get_version
t_done
