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
int rpc_main(int argc, char **argv);

/* --- examine.c --- */
int examine_main(int argc, char **argv);

#endif
