/* SPDX-License-Identifier: BSD-3-Clause */
/* Private interface of the command-line tools, sectioned by file. */
#ifndef URAID_CLI_H
#define URAID_CLI_H

/* --- bench.c --- */
int bench_main(int argc, char **argv);
/* Unregister every bdev, newest first (stacked ones before their bases), and wait. */
void delete_all_bdevs(void);

/* --- rebuild_bench.c --- */
int rebuild_bench_main(int argc, char **argv);

/* --- examine.c --- */
int examine_main(int argc, char **argv);

#endif
