/* SPDX-License-Identifier: BSD-3-Clause */
/* Private interface of the command-line tools, sectioned by file. */
#ifndef URAID_CLI_H
#define URAID_CLI_H

#include <stdint.h>

/* --- bench.c --- */
int bench_main(int argc, char **argv);
/* A core mask: hex (0x3) or a list ([0,2-3]). 0 or -EINVAL. */
int cli_parse_mask(const char *s, uint64_t *mask);
/* Unregister every bdev, newest first (stacked ones before their bases), and wait. */
void delete_all_bdevs(void);

/* --- rebuild_bench.c --- */
int rebuild_bench_main(int argc, char **argv);

/* --- serve.c --- */
int serve_main(int argc, char **argv);

/* --- rpc_client.c --- */
#include <jansson.h>
#include <stddef.h>

#define DEFAULT_RPC_SOCKET "/var/tmp/uraid.sock"

int rpc_main(int argc, char **argv);
/* The socket to use: given, else $URAID_RPC_SOCKET, else the default. */
const char *cli_rpc_socket(const char *given);
/* Call method on the daemon; 0 with *result (a new reference), or the error code with the
 * daemon's message in err. */
int cli_rpc_call(const char *socket_path, const char *method, json_t *params, json_t **result,
		 char *err, size_t err_len);

/* --- admin.c --- */
#include <stdbool.h>

bool admin_is_command(const char *name);
int admin_main(int argc, char **argv); /* argv[0]: create, status, add-spare, fail, ... */

/* --- torture.c --- */
int torture_main(int argc, char **argv);

/* --- examine.c --- */
int examine_main(int argc, char **argv);

#endif
