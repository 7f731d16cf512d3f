/* SPDX-License-Identifier: BSD-3-Clause */
/* Private interface of the runtime, sectioned by file. */
#ifndef URAID_RUNTIME_H
#define URAID_RUNTIME_H

#include <stdatomic.h>

#include "uraid/thread.h"
#include "common/common.h"

/* --- ring.c: bounded lock-free multi-producer single-consumer message ring --- */
struct msg_cell {
	_Atomic uint64_t seq;
	uraid_msg_fn fn;
	void *arg;
};

struct msg_ring {
	/* Producers claim slots by CAS on tail; the one consumer owns head. Each on its own
	 * cache line, and apart from mask and cells, which every producer reads: a head beside
	 * them would cost a producer a miss on every message after each dequeue. */
	_Alignas(CACHE_LINE_BYTES) uint64_t mask;
	struct msg_cell *cells;
	_Alignas(CACHE_LINE_BYTES) _Atomic uint64_t tail;
	_Alignas(CACHE_LINE_BYTES) uint64_t head;
};

int msg_ring_init(struct msg_ring *ring, uint64_t entries);
void msg_ring_fini(struct msg_ring *ring);
/* Any thread. 0, or -EAGAIN when the ring is full. */
int msg_ring_enqueue(struct msg_ring *ring, uraid_msg_fn fn, void *arg);
/* Consumer only. true and the message, or false when empty. */
bool msg_ring_dequeue(struct msg_ring *ring, uraid_msg_fn *fn, void **arg);
/* Consumer only. */
bool msg_ring_empty(struct msg_ring *ring);

/* --- channel.c: per-reactor channel list, used by reactor.c --- */
TAILQ_HEAD(channel_list, uraid_io_channel);
void channel_reactor_fini(struct uraid_reactor *reactor);
struct channel_list *reactor_channels(struct uraid_reactor *reactor);

#endif
