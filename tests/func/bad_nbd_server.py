#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# An NBD server that breaks the protocol on purpose, for tests/func/test_remote.sh: a correct
# fixed-newstyle handshake (an export of 16 MiB, simple replies only), then, in transmission,
#   handle: every reply carries a handle the client never sent
#   short:  a READ's reply header, half its data, and the connection closed
# Usage: bad_nbd_server.py SOCKET_PATH MODE (serves connections until killed)
import os
import socket
import struct
import sys

SIZE = 16 << 20


def recv_all(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def opt_reply(c, opt, typ, data=b""):
    c.sendall(struct.pack(">QIII", 0x3E889045565A9, opt, typ, len(data)) + data)


def serve(c, mode):
    c.sendall(b"NBDMAGIC" + b"IHAVEOPT" + struct.pack(">H", 3))
    recv_all(c, 4)
    while True:
        _, opt, ln = struct.unpack(">QII", recv_all(c, 16))
        recv_all(c, ln)
        if opt == 7:  # GO: the export's size and flags (flush), then ACK
            opt_reply(c, opt, 3, struct.pack(">HQH", 0, SIZE, 1 | 4))
            opt_reply(c, opt, 1)
            break
        if opt == 2:  # ABORT
            return
        opt_reply(c, opt, (1 << 31) | 1)  # anything else: unsupported
    while True:
        _, _, typ, handle, _, ln = struct.unpack(">IHHQQI", recv_all(c, 28))
        if typ == 1:
            recv_all(c, ln)
        if typ == 2:
            return
        if mode == "handle":
            c.sendall(struct.pack(">IIQ", 0x67446698, 0, handle ^ 0x5A5A5A5A))
            if typ == 0:
                c.sendall(bytes(ln))
        elif typ == 0:
            c.sendall(struct.pack(">IIQ", 0x67446698, 0, handle) + bytes(ln // 2))
            return
        else:
            c.sendall(struct.pack(">IIQ", 0x67446698, 0, handle))


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(8)
    while True:
        c, _ = s.accept()
        try:
            serve(c, mode)
        except (EOFError, OSError):
            pass
        c.close()


main()
