#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TLS on the NBD exports (uraid serve --tls-psk FILE | --tls-certs DIR [--tls-verify-peer]
# [--tls-require]), with libnbd's tools as the clients: offered, a plain client and a TLS one
# both work; required, a plain client is refused before it learns anything (not even the
# export list), a wrong key fails the handshake, and data copied in and out over TLS comes
# back the same. With x509 certificates (made here by certtool) and clients verified, a
# client of our CA works, one without a certificate or of another CA is refused. A second
# daemon attaches the export as a member over nbds:// (bdev_nbd_attach) and builds a mirror on
# it; attaching it in the clear is refused with the reason. Bad option combinations, a key
# file that is not one and a certificate directory without certificates are refused at start.
. "$(dirname "$0")/lib.sh"

SOCK=$T_DIR/head.sock
TSOCK=$T_DIR/tls.sock
TPID=
stop_tls() { stop_pid TPID; }
trap 'stop_daemon; stop_tls; t_cleanup' EXIT
PORT=$((20000 + $$ % 20000))
need_tools nbdinfo nbdcopy certtool

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
	wait_rpc "$TSOCK"
	"$URAID" export -s "$TSOCK" m0 "127.0.0.1:$PORT" >/dev/null
}
PLAIN="nbd://127.0.0.1:$PORT/m0"
TLS="nbds://alice@127.0.0.1:$PORT/m0?tls-psk-file=$T_DIR/keys.psk"
WRONG="nbds://alice@127.0.0.1:$PORT/m0?tls-psk-file=$T_DIR/wrong.psk"

# --- bad options ---
check "--tls-require without keys" 2 'go with --tls-psk FILE or --tls-certs DIR' \
	"$URAID" serve --rpc-socket "$T_DIR/x.sock" --tls-require
check "a key file that does not exist" 1 'TLS: .*none.psk: No such file' \
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

# --- x509: a CA, the server's certificate, a client's; another CA's client ---
certs() { # DIR CN KIND(server|client) CA_DIR
	mkdir -p "$1"
	certtool --generate-privkey --outfile "$1/$3-key.pem" 2>/dev/null
	printf 'cn = %s\nip_address = 127.0.0.1\ntls_www_%s\nencryption_key\nsigning_key\nexpiration_days = 2\n' \
		"$2" "$3" >"$1/$3.info"
	certtool --generate-certificate --load-ca-certificate "$4/ca-cert.pem" \
		--load-ca-privkey "$4/ca-key.pem" --load-privkey "$1/$3-key.pem" \
		--template "$1/$3.info" --outfile "$1/$3-cert.pem" 2>/dev/null
	cp "$4/ca-cert.pem" "$1/ca-cert.pem"
}
ca() { # DIR CN
	mkdir -p "$1"
	certtool --generate-privkey --outfile "$1/ca-key.pem" 2>/dev/null
	printf 'cn = %s\nca\ncert_signing_key\nexpiration_days = 2\n' "$2" >"$1/ca.info"
	certtool --generate-self-signed --load-privkey "$1/ca-key.pem" --template "$1/ca.info" \
		--outfile "$1/ca-cert.pem" 2>/dev/null
}
ca "$T_DIR/ca" "uraid test CA"
ca "$T_DIR/ca2" "another CA"
certs "$T_DIR/srv" 127.0.0.1 server "$T_DIR/ca"
certs "$T_DIR/cli" head client "$T_DIR/ca"
certs "$T_DIR/cli2" intruder client "$T_DIR/ca2"
mkdir -p "$T_DIR/cai" "$T_DIR/noca"
cp "$T_DIR/ca/ca-cert.pem" "$T_DIR/cai/"
cp "$T_DIR/srv/server-cert.pem" "$T_DIR/srv/server-key.pem" "$T_DIR/noca/"
check "--tls-psk and --tls-certs both" 1 'not both' \
	"$URAID" serve --rpc-socket "$T_DIR/x.sock" --tls-psk "$T_DIR/keys.psk" --tls-certs "$T_DIR/srv"
check "a certificate directory without them" 1 'server-cert.pem' \
	"$URAID" serve --rpc-socket "$T_DIR/x.sock" --tls-certs "$T_DIR/none"
check "verifying clients without a CA" 1 'ca-cert.pem' \
	"$URAID" serve --rpc-socket "$T_DIR/x.sock" --tls-certs "$T_DIR/noca" --tls-verify-peer
stop_tls
start_tls --tls-certs "$T_DIR/srv" --tls-verify-peer --tls-require
X509="nbds://127.0.0.1:$PORT/m0?tls-certificates=$T_DIR/cli"
check "x509: a client with a certificate of our CA works" 0 'with TLS' nbdinfo "$X509"
check "x509: a client without a certificate is refused" 1 'gnutls|TLS|handshake|certificate' \
	nbdinfo "nbds://127.0.0.1:$PORT/m0?tls-certificates=$T_DIR/cai"
check "x509: a client of another CA is refused" 1 'gnutls|TLS|handshake|certificate|verif' \
	nbdinfo "nbds://127.0.0.1:$PORT/m0?tls-certificates=$T_DIR/cli2"
check "x509: a plain client is refused" 1 'server replied with error' nbdinfo "$PLAIN"
check "x509: the server logs the verified client" 0 'TLS on \(client certificate verified\)' \
	cat "$T_DIR/tls.log"

# --- a member over TLS (x509 here; pre-shared keys in tests/net/test_hosts.sh) ---
t_cfg "$T_DIR/head.json" \
	'{"method":"bdev_malloc_create","params":{"name":"l0","num_blocks":8192,"block_size":4096}}'
if ! start_daemon "$T_DIR/head.json"; then
	t_fail "head daemon starts" "$(tail -n 5 "$T_DIR/serve.log")"
	t_done
	exit
fi
check "attaching in the clear is refused, with the reason" 1 "cannot attach 'p0': .*requires TLS" \
	rpc bdev_nbd_attach "{\"name\":\"p0\",\"uri\":\"$PLAIN\",\"timeout_ms\":2000}"
check "attaching with another CA's certificate is refused" 1 "cannot attach 'w0'" \
	rpc bdev_nbd_attach "{\"name\":\"w0\",\"uri\":\"nbds://127.0.0.1:$PORT/m0?tls-certificates=$T_DIR/cli2\",\"timeout_ms\":2000}"
check "attached over nbds://" 0 '"t0"' \
	rpc bdev_nbd_attach "{\"name\":\"t0\",\"uri\":\"$X509\",\"timeout_ms\":2000}"
check "a mirror over a local member and the TLS one" 0 true \
	rpc bdev_raid_create '{"name":"m1","raid_level":"raid1","base_bdevs":["l0","t0"],"superblock":true}'
"$URAID" export -s "$SOCK" m1 "$T_DIR/m1.nbd" >/dev/null
M1="nbd+unix:///m1?socket=$T_DIR/m1.nbd"
head -c 16M /dev/urandom >"$T_DIR/m.bin"
nbdcopy --flush "$T_DIR/m.bin" "$M1"
check "the local member fails" 0 'failed' "$URAID" fail -s "$SOCK" l0
if nbd_reads_back "$M1" "$T_DIR/m.bin"; then
	t_pass "what was written reads back from the member over TLS alone"
else
	t_fail "what was written reads back from the member over TLS alone" "differs"
fi
check "the head is alive at the end" 0 '"uraid v' rpc uraid_get_version
t_done
