/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Bounded MPSC message ring (D. Vyukov's bounded queue, single consumer).
 *
 * Theory of operation: each cell carries a sequence number. A cell at index i is free for the
 * producer that claims position p (p & mask == i) when seq == p, and holds a message for the
 * consumer at position p when seq == p + 1. The consumer frees it for the next lap by storing
 * seq = p + entries.
 *
 *     tail (producers, CAS) ------------------v
 *     cells:  [seq=p+1 msg] [seq=p+1 msg] [seq=p free] [seq=p free] ...
 *     head (consumer) --^
 *
 * Positions are free-running 64-bit counters and never wrap in practice.
 */
#include <stdlib.h>

#include "runtime.h"

int
msg_ring_init(struct msg_ring *ring, uint64_t entries)
{
	if (!is_pow2_u64(entries) || entries < 2)
		return -EINVAL;
	ring->cells = aligned_alloc(CACHE_LINE_BYTES,
				    align_up_u64(entries * sizeof(*ring->cells), CACHE_LINE_BYTES));
	if (ring->cells == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < entries; i++)
		atomic_init(&ring->cells[i].seq, i);
	ring->mask = entries - 1;
	ring->head = 0;
	atomic_init(&ring->tail, 0);
	return 0;
}

void
msg_ring_fini(struct msg_ring *ring)
{
	free(ring->cells);
	ring->cells = NULL;
}

int
msg_ring_enqueue(struct msg_ring *ring, uraid_msg_fn fn, void *arg)
{
	uint64_t pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);
	struct msg_cell *cell;

	for (;;) {
		cell = &ring->cells[pos & ring->mask];
		/* Acquire pairs with the consumer's release in dequeue: once we see the cell free,
		 * the consumer's reads of the old fn/arg are done and we may overwrite them. */
		uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);

		if (diff == 0) {
			/* Relaxed CAS: the claim only orders us among producers; the payload is
			 * published by the release store below. */
			if (atomic_compare_exchange_weak_explicit(&ring->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (diff < 0) {
			return -EAGAIN; /* the consumer has not freed this cell: full */
		} else {
			pos = atomic_load_explicit(&ring->tail, memory_order_relaxed);
		}
	}
	cell->fn = fn;
	cell->arg = arg;
	/* Release publishes fn/arg to the consumer's acquire load of seq. */
	atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
	return 0;
}

bool
msg_ring_dequeue(struct msg_ring *ring, uraid_msg_fn *fn, void **arg)
{
	struct msg_cell *cell = &ring->cells[ring->head & ring->mask];
	/* Acquire pairs with the producer's release: fn/arg are visible once seq says so. */
	uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);

	if (seq != ring->head + 1)
		return false;
	*fn = cell->fn;
	*arg = cell->arg;
	/* Release: our reads of fn/arg happen before a producer of the next lap reuses the cell. */
	atomic_store_explicit(&cell->seq, ring->head + ring->mask + 1, memory_order_release);
	ring->head++;
	return true;
}

bool
msg_ring_empty(struct msg_ring *ring)
{
	struct msg_cell *cell = &ring->cells[ring->head & ring->mask];

	return atomic_load_explicit(&cell->seq, memory_order_acquire) != ring->head + 1;
}
