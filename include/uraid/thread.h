/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The uraid runtime: reactors, messages, pollers and per-reactor I/O channels.
 *
 * A reactor is one OS thread (or, in manual-poll mode, one object a test polls by hand) that
 * runs messages and pollers to completion. Objects are owned by one reactor; other reactors
 * talk to them by message. Nothing on the data path takes a lock.
 *
 * Threading rules:
 *  - uraid_runtime_start/stop run on a thread that is not a reactor (the program's main thread).
 *  - uraid_reactor_send may be called from any thread, reactor or not.
 *  - Pollers, channels and for-each-channel walks are per reactor: call those functions on a
 *    reactor (uraid_reactor_self() != NULL).
 */
#ifndef URAID_THREAD_H
#define URAID_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define URAID_MAX_REACTORS 64

struct uraid_reactor;
struct uraid_poller;
struct uraid_io_channel;
struct uraid_channel_iter;

typedef void (*uraid_msg_fn)(void *arg);

/* A poller returns URAID_POLLER_BUSY when it did work or has work in flight (the reactor then
 * keeps spinning) and URAID_POLLER_IDLE otherwise (the reactor may sleep). */
enum { URAID_POLLER_IDLE = 0, URAID_POLLER_BUSY = 1 };
typedef int (*uraid_poller_fn)(void *arg);

struct uraid_runtime_opts {
	unsigned num_reactors;	   /* 1..URAID_MAX_REACTORS */
	const int *cpus;	   /* cpus[i] pins reactor i; NULL (or -1 entries) = no pinning */
	bool manual_poll;	   /* no threads: the caller polls with uraid_reactor_poll() */
	unsigned msg_ring_entries; /* per reactor, power of two; 0 = default (65536) */
};

/* Create the reactors (and their threads unless manual_poll). 0 or -errno. */
int uraid_runtime_start(const struct uraid_runtime_opts *opts);

/* Stop every reactor after the messages already queued have run, join the threads and free
 * the runtime. The caller must have released its channels and pollers first. */
void uraid_runtime_stop(void);

/* The reactors that exist now: indexes 0..count-1. */
unsigned uraid_reactor_count(void);
/*
 * The reactors that own stripes (DESIGN.md section 2): indexes 0..n-1, fixed from the start
 * of the runtime, so stripe ownership and the per-owner log rings never move. Natively every
 * reactor is an owner. Inside SPDK the owners are the threads the module starts, one per
 * core; any other SPDK thread that submits I/O to an array becomes a reactor with a higher
 * index (it takes channels, reads, and sends writes to the owners) when it first does so.
 */
unsigned uraid_owner_count(void);
bool uraid_runtime_is_manual(void);
struct uraid_reactor *uraid_reactor_get(unsigned index);
/* The reactor running the calling code, or NULL on a non-reactor thread. */
struct uraid_reactor *uraid_reactor_self(void);
unsigned uraid_reactor_index(const struct uraid_reactor *reactor);
/* True if reactor runs on the CPU core of the calling reactor (inside SPDK, another thread on
 * the same core; natively only the caller itself): work handed to it runs no sooner in
 * parallel than here. */
bool uraid_reactor_shares_core(const struct uraid_reactor *reactor);

/* Queue fn(arg) to run on reactor. Never runs fn inside the call, even for the caller's own
 * reactor. Ordering: messages from one sender to one reactor run in the order sent. Returns 0,
 * or -ENOMEM when the overflow list could not grow. */
int uraid_reactor_send(struct uraid_reactor *reactor, uraid_msg_fn fn, void *arg);

/* Manual-poll mode: run one iteration of reactor (messages, pollers, due timers) on the
 * calling thread. Returns the number of events handled (0 = idle). */
int uraid_reactor_poll(struct uraid_reactor *reactor);

/* Poll every reactor until all are idle, or max_iterations rounds pass. Returns the number of
 * rounds run. Manual-poll mode only. */
unsigned uraid_runtime_poll_until_idle(unsigned max_iterations);

/* On a thread that is not a reactor: return once *flag is true, polling every reactor in
 * manual-poll mode and sleeping 50 us between looks otherwise. For control paths that start
 * work on a reactor and must wait for it. */
void uraid_runtime_wait(const _Atomic bool *flag);

/* Pollers run on the calling reactor: every iteration (period_us == 0) or every period_us. */
struct uraid_poller *uraid_poller_register(uraid_poller_fn fn, void *arg, uint64_t period_us);
/* Safe from inside the poller's own function; sets *poller to NULL. */
void uraid_poller_unregister(struct uraid_poller **poller);

/*
 * A reactor with nothing to do sleeps until a message arrives or a timer is due. Pollers that
 * serve file descriptors (sockets) register them here so that the sleep also ends when one
 * becomes readable; the poller still does the reading. On the calling reactor; at most
 * URAID_MAX_WAKE_FDS per reactor (an epoll fd covers any number of sockets). 0, -ENOSPC, or
 * -EINVAL when not called on a reactor.
 */
#define URAID_MAX_WAKE_FDS 4
int uraid_reactor_add_wake_fd(int fd);
void uraid_reactor_remove_wake_fd(int fd);

/*
 * Memory a member may transfer to or from directly (SPDK: hugepage memory, spdk_dma_malloc;
 * natively: aligned_alloc). Every buffer core hands to a member for I/O comes from here or
 * from the submitter. align is a power of two; size need not be a multiple of it. Any thread.
 */
void *uraid_dma_alloc(size_t align, size_t size);
void uraid_dma_free(void *buf);

/* Monotonic microseconds. In manual-poll mode the clock is the test's: see below. */
uint64_t uraid_now_us(void);
/* The TSC as the calling reactor's loop last read it: at the start of each round, and again
 * before its pollers when messages ran. For per-I/O statistics, which tolerate a timestamp up
 * to a round late, without a TSC read per call. On a non-reactor thread, the TSC now. */
uint64_t uraid_reactor_ticks(void);
/* Manual-poll mode only: advance the runtime's clock (timers see time move only this way, so
 * timer tests are deterministic). */
void uraid_runtime_advance_us(uint64_t us);

/*
 * I/O devices and channels (SPDK's io_device/io_channel): an object registers once; each
 * reactor that uses it gets its own channel, whose context is built by create_cb on that
 * reactor and torn down by destroy_cb there when the last reference is put.
 */
typedef int (*uraid_channel_create_cb)(void *io_device, void *ctx);
typedef void (*uraid_channel_destroy_cb)(void *io_device, void *ctx);
typedef void (*uraid_io_device_unregister_cb)(void *io_device);

void uraid_io_device_register(void *io_device, uraid_channel_create_cb create_cb,
			      uraid_channel_destroy_cb destroy_cb, size_t ctx_size,
			      const char *name);
/* No new channels can be taken; unregister_cb runs once every channel is gone: on the reactor
 * that called unregister, or, if that was not a reactor, on the thread that put the last one. */
void uraid_io_device_unregister(void *io_device, uraid_io_device_unregister_cb unregister_cb);

/* NULL if the device is not registered or create_cb failed. Reference counted per reactor. */
struct uraid_io_channel *uraid_get_io_channel(void *io_device);
void uraid_put_io_channel(struct uraid_io_channel *ch);
/* One more reference to a channel the caller holds (on its reactor); put it when done. */
void uraid_io_channel_hold(struct uraid_io_channel *ch);
void *uraid_io_channel_get_ctx(struct uraid_io_channel *ch);
struct uraid_io_channel *uraid_io_channel_from_ctx(void *ctx);
struct uraid_reactor *uraid_io_channel_get_reactor(struct uraid_io_channel *ch);

/*
 * Visit every channel of io_device, one reactor at a time in index order, calling fn on the
 * channel's reactor; fn must end with uraid_for_each_channel_continue(iter, status). A non-zero
 * status stops the walk. cpl then runs on the calling reactor with the last status.
 */
typedef void (*uraid_channel_msg)(struct uraid_channel_iter *iter);
typedef void (*uraid_channel_for_each_cpl)(struct uraid_channel_iter *iter, int status);

void uraid_for_each_channel(void *io_device, uraid_channel_msg fn, void *ctx,
			    uraid_channel_for_each_cpl cpl);
void uraid_for_each_channel_continue(struct uraid_channel_iter *iter, int status);
struct uraid_io_channel *uraid_channel_iter_get_channel(struct uraid_channel_iter *iter);
void *uraid_channel_iter_get_ctx(struct uraid_channel_iter *iter);
void *uraid_channel_iter_get_io_device(struct uraid_channel_iter *iter);

#ifdef __cplusplus
}
#endif
#endif
