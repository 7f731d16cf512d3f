/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Listening sockets for the servers: Unix sockets (owner-only, a stale file from a process
 * that is gone is replaced, a live one refused) and TCP on host:port (127.0.0.1 unless a host
 * is given). Both are non-blocking and close-on-exec.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rpc.h"

int
sock_listen_unix(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old_mask;
	int fd, rc;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		err_set(err, err_len, "%s: socket path too long (at most %zu bytes)", path,
			sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			err_set(err, err_len, "%s exists and is not a socket; choose another path",
				path);
			return -EEXIST;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
			close(fd);
			err_set(err, err_len, "another process is serving on %s", path);
			return -EADDRINUSE;
		}
		if (fd >= 0)
			close(fd);
		unlink(path); /* left by a process that is gone */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		err_set(err, err_len, "socket: %s", strerror(errno));
		return rc;
	}
	/* Owner only, from the start: whoever connects controls or reads the disks. */
	old_mask = umask(077);
	rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_mask);
	if (rc == 0)
		rc = chmod(path, 0600);
	if (rc != 0 || listen(fd, 128) != 0) {
		rc = -errno;
		err_set(err, err_len, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

int
sock_parse_tcp(const char *spec, char *host, size_t host_len, char *port, size_t port_len)
{
	const char *colon = strrchr(spec, ':');
	const char *p = colon ? colon + 1 : spec;
	size_t hlen = colon ? (size_t)(colon - spec) : 0;
	char *end;
	unsigned long v;

	if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
		return -EINVAL;
	v = strtoul(p, &end, 10);
	if (v == 0 || v > 65535)
		return -EINVAL;
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') { /* [::1]:10809 */
		spec++;
		hlen -= 2;
	}
	if (hlen == 0) {
		spec = "127.0.0.1"; /* local only unless asked */
		hlen = strlen(spec);
	}
	if (hlen >= host_len || strlen(p) >= port_len)
		return -EINVAL;
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	snprintf(port, port_len, "%s", p);
	return 0;
}

int
sock_listen_tcp(const char *spec, char *err, size_t err_len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char host[256], port[8];
	int fd, rc, one = 1;

	if (sock_parse_tcp(spec, host, sizeof(host), port, sizeof(port)) != 0) {
		err_set(err, err_len, "%s: give host:port with a port from 1 to 65535", spec);
		return -EINVAL;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		err_set(err, err_len, "%s: %s", spec, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    res->ai_protocol);
	if (fd < 0) {
		rc = -errno;
		err_set(err, err_len, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		rc = -errno;
		err_set(err, err_len, "%s: %s%s", spec, strerror(errno),
			rc == -EADDRINUSE ? " (another server listens there)" : "");
		close(fd);
		freeaddrinfo(res);
		return rc;
	}
	freeaddrinfo(res);
	return fd;
}
