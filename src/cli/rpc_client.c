/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uraid rpc: call one JSON-RPC method of a running daemon and print its result (or, with
 * --raw, send standard input as it is and print whatever comes back, for testing servers).
 */
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "common/common.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: uraid rpc [-s SOCKET] [-t SECONDS] METHOD [PARAMS]\n"
		"       uraid rpc [-s SOCKET] [-t SECONDS] --raw < REQUESTS\n"
		"\n"
		"  METHOD   a method name ('uraid rpc rpc_get_methods' lists them)\n"
		"  PARAMS   its parameters as a JSON object, e.g. '{\"name\": \"r0\"}'\n"
		"  -s, --socket PATH   the daemon's socket (default $URAID_RPC_SOCKET, else\n"
		"                      " DEFAULT_RPC_SOCKET ")\n"
		"  -t, --timeout SECS  give up waiting after this long (default 600)\n"
		"  --raw               send standard input unchanged; print every reply\n"
		"\n"
		"Prints the result as JSON; an error goes to stderr and the exit status is 1.\n");
}

static int
connect_to(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, err_len, "%s: socket path too long", path);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		snprintf(err, err_len,
			 "cannot connect to %s: %s; is 'uraid serve' running? (-s SOCKET or "
			 "$URAID_RPC_SOCKET name its socket)",
			 path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Receive into *buf (growing); 1 on data, 0 at EOF, -1 on error or timeout. */
static int
recv_some(int fd, char **buf, size_t *len, size_t *cap, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (*cap - *len < 4096) {
		char *nb = realloc(*buf, *cap * 2 + 8192);

		if (nb == NULL)
			return -1;
		*buf = nb;
		*cap = *cap * 2 + 8192;
	}
	if (poll(&p, 1, timeout_ms) <= 0) {
		fprintf(stderr, "uraid rpc: no answer within %d s\n", timeout_ms / 1000);
		return -1;
	}
	n = recv(fd, *buf + *len, *cap - *len - 1, 0);
	if (n < 0)
		return -1;
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return n > 0;
}

static int
raw_mode(int fd, int timeout_ms)
{
	char *in = NULL, *out = NULL;
	size_t in_len = 0, in_cap = 0, out_len = 0, out_cap = 0;
	int rc;

	for (;;) {
		size_t n;

		if (in_cap - in_len < 4096) {
			char *nb = realloc(in, in_cap * 2 + 8192);

			if (nb == NULL)
				return 1;
			in = nb;
			in_cap = in_cap * 2 + 8192;
		}
		n = fread(in + in_len, 1, in_cap - in_len, stdin);
		if (n == 0)
			break;
		in_len += n;
	}
	rc = send_all(fd, in, in_len);
	free(in);
	if (rc != 0) {
		fprintf(stderr, "uraid rpc: send: %s\n", strerror(errno));
		return 1;
	}
	shutdown(fd, SHUT_WR);
	while ((rc = recv_some(fd, &out, &out_len, &out_cap, timeout_ms)) > 0)
		;
	if (out_len > 0)
		fwrite(out, 1, out_len, stdout);
	free(out);
	return rc < 0 ? 1 : 0;
}

const char *
cli_rpc_socket(const char *given)
{
	const char *env = getenv("URAID_RPC_SOCKET");

	if (given != NULL)
		return given;
	return env != NULL && env[0] != '\0' ? env : DEFAULT_RPC_SOCKET;
}

/* Send a request and read its answer: the whole response object, or NULL (said on stderr). */
static json_t *
exchange(int fd, const char *method, json_t *params, int timeout_ms)
{
	json_t *req, *resp = NULL;
	char *text, *buf = NULL;
	size_t len = 0, cap = 0;

	req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1, "method", method);
	if (params != NULL)
		json_object_set(req, "params", params);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL || send_all(fd, text, strlen(text)) != 0) {
		fprintf(stderr, "uraid: sending to the daemon: %s\n", strerror(errno));
		free(text);
		return NULL;
	}
	free(text);
	for (;;) {
		json_error_t jerr;
		int got = recv_some(fd, &buf, &len, &cap, timeout_ms);

		if (got < 0)
			break;
		resp = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &jerr);
		if (resp != NULL)
			break;
		if (got == 0 || json_error_code(&jerr) != json_error_premature_end_of_input) {
			fprintf(stderr, "uraid: the daemon's answer is not JSON: %s\n", jerr.text);
			break;
		}
	}
	free(buf);
	return resp;
}

int
cli_rpc_call(const char *socket_path, const char *method, json_t *params, json_t **result,
	     char *err, size_t err_len)
{
	json_t *resp, *error;
	int fd = connect_to(socket_path, err, err_len);

	*result = NULL;
	if (fd < 0)
		return -ECONNREFUSED;
	resp = exchange(fd, method, params, 600 * 1000);
	close(fd);
	if (resp == NULL) {
		snprintf(err, err_len, "no answer from the daemon");
		return -EIO;
	}
	error = json_object_get(resp, "error");
	if (error != NULL) {
		int code = (int)json_integer_value(json_object_get(error, "code"));

		snprintf(err, err_len, "%s", json_string_value(json_object_get(error, "message")));
		json_decref(resp);
		return code ? code : -EIO;
	}
	*result = json_incref(json_object_get(resp, "result"));
	json_decref(resp);
	return 0;
}

int
rpc_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{"raw", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = cli_rpc_socket(NULL);
	json_t *params = NULL, *resp, *error;
	int timeout_ms = 600 * 1000;
	char err[512];
	bool raw = false;
	int c, fd, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 't':
			timeout_ms = atoi(optarg) * 1000;
			if (timeout_ms <= 0) {
				fprintf(stderr, "uraid rpc: --timeout takes a number of seconds\n");
				return 2;
			}
			break;
		case 'R':
			raw = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (raw ? optind != argc : (optind >= argc || argc - optind > 2)) {
		usage(stderr);
		return 2;
	}
	if (!raw && argc - optind == 2) {
		json_error_t jerr;

		params = json_loads(argv[optind + 1], 0, &jerr);
		if (params == NULL || !json_is_object(params)) {
			fprintf(stderr, "uraid rpc: PARAMS must be a JSON object%s%s\n",
				params ? "" : ": ", params ? "" : jerr.text);
			json_decref(params);
			return 2;
		}
	}
	fd = connect_to(path, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "uraid rpc: %s\n", err);
		json_decref(params);
		return 1;
	}
	if (raw) {
		rc = raw_mode(fd, timeout_ms);
		close(fd);
		return rc;
	}
	resp = exchange(fd, argv[optind], params, timeout_ms);
	json_decref(params);
	close(fd);
	if (resp == NULL)
		return 1;
	error = json_object_get(resp, "error");
	if (error != NULL) {
		fprintf(stderr, "uraid rpc: %s: %s (code %lld)\n", argv[optind],
			json_string_value(json_object_get(error, "message")),
			(long long)json_integer_value(json_object_get(error, "code")));
	} else {
		json_dumpf(json_object_get(resp, "result"), stdout,
			   JSON_INDENT(2) | JSON_ENCODE_ANY);
		putchar('\n');
		rc = 0;
	}
	json_decref(resp);
	return rc;
}
