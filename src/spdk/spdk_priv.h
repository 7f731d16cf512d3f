/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SPDK port: uraid's runtime (uraid/thread.h) and bdev interfaces (uraid/bdev.h,
 * uraid/bdev_module.h) implemented over SPDK, so that src/core runs unchanged inside an SPDK
 * application as the bdev module "uraid". Sectioned by file.
 *
 * Threads:
 *  - Reactor 0 is SPDK's app thread: SPDK registers bdevs, opens module descriptors and runs
 *    examine there, and core's control reactor needs the same rights.
 *  - Reactors 1..n-1 are SPDK threads the module starts, one per further core of the
 *    application. Reactors 0..n-1 own the stripes (uraid_owner_count() = n).
 *  - Any other SPDK thread that submits I/O to an array (a bdevperf job, an NVMe-oF poll
 *    group) becomes a reactor with a higher index the first time core asks who it is.
 *  - The control thread is a plain pthread (no SPDK thread): core's control functions block
 *    there, as in the daemon, while the reactors keep running. JSON-RPC handlers and examine
 *    hand their work to it and answer from the app thread when it is done.
 */
#ifndef URAID_SPDK_PRIV_H
#define URAID_SPDK_PRIV_H

#include <stdbool.h>
/* SPDK's headers include syslog.h, whose LOG_* macros are the names of our log macros: take
 * them back (include SPDK's headers before this one, and this one before any of ours). */
#include <syslog.h>
#undef LOG_EMERG
#undef LOG_ALERT
#undef LOG_CRIT
#undef LOG_ERR
#undef LOG_WARNING
#undef LOG_NOTICE
#undef LOG_INFO
#undef LOG_DEBUG

#include "common/common.h"
#include "uraid/bdev_module.h"
#include "uraid/thread.h"

/* Thread-locals of the module: it is loaded at program start (LD_PRELOAD or linked), so the
 * static TLS model holds and each access is one instruction, not a __tls_get_addr call. */
#define PORT_TLS __thread __attribute__((tls_model("initial-exec")))

struct spdk_thread;
struct spdk_bdev;
struct spdk_bdev_module;

/* --- thread.c --- */
/* Start reactors (the app thread plus one SPDK thread per further core) and the control
 * thread. On the app thread. 0 or -errno. */
int port_runtime_start(void);
/* Stop the control thread and let the module's SPDK threads exit. On the app thread. */
void port_runtime_stop(void);
/* Run fn(arg) on thread and wait until it returns. From the control thread only (the waiting
 * would stall an SPDK thread); on thread itself it runs fn directly. */
void port_run_on(struct spdk_thread *thread, uraid_msg_fn fn, void *arg);
/* Run fn(arg) on the control thread, later. 0 or -ENOMEM. Any thread. */
int port_control_post(uraid_msg_fn fn, void *arg);
/* True on the control thread. */
bool port_on_control_thread(void);

/* --- bdev.c --- */
/* The largest driver context an array's I/O needs, for the module's get_ctx_size. */
size_t port_bdev_io_ctx_size(void);
/* The uraid bdev of an SPDK bdev: the array itself if it is one of ours, else NULL. */
struct uraid_bdev *port_array_of(struct spdk_bdev *bdev);
/* The array of an SPDK bdev context (spdk_bdev.ctxt) of ours. */
struct uraid_bdev *port_array_of_ctx(void *ctx);
void port_bdev_fini(void);

/* --- module.c: registration, examine, the arrays' JSON --- */
extern struct spdk_bdev_module g_uraid_module;
struct spdk_json_write_ctx;
int port_array_dump_info_json(void *ctx, struct spdk_json_write_ctx *w);
void port_array_write_config_json(struct spdk_bdev *bdev, struct spdk_json_write_ctx *w);

/* --- rpc.c: bdev_uraid_* over the daemon's handlers, JSON between SPDK and jansson --- */
struct json_t;
void port_json_write(struct spdk_json_write_ctx *w, const struct json_t *v);

#endif
