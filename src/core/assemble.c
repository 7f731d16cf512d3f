/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Superblocks at run time: writing them (every state change, generation + 1, to every active
 * member), the check that create does not overwrite another array, reading them, and
 * assembling arrays from whatever members are present.
 *
 * Theory of operation.
 *
 * Writer. All superblock writes run on reactor 0, one round at a time. A round encodes the
 * array's current state with the next generation (each member's copy names its own slot) and
 * writes it with FUA to every active member: the primary copy first, the backup only once the
 * primary is on stable media, so a power cut can tear at most one of the two and the other
 * always decodes (the old generation or the new). Requests
 * that arrive during a round are served by one more round afterwards, so a waiter always sees
 * a superblock at least as new as the state it asked about. A member whose superblock write
 * fails is failed, which asks for yet another round.
 *
 * Assembly. Every unclaimed bdev is read; copies that decode are grouped by array UUID. In a
 * group the highest generation is the truth. Slot i is filled by the member whose own copy
 * names slot i with the slot's UUID; a member whose generation is older by more than one (the
 * superblock round a crash may have cut short) is stale (it missed
 * writes) and is left out, as is one the truth marks failed. Then the level's tolerance
 * decides whether the array can start, and a dirty (not cleanly shut down) parity array that
 * would start degraded needs force, since its parity may not match its data, unless its policy
 * is ppl: the log recovery makes parity match the data first. Mirrors start dirty and degraded
 * without force: every copy is a whole version of its blocks.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core.h"

#define SB_AREA_BYTES (2 * SB_BYTES) /* primary + backup, adjacent */
_Static_assert(SB_AREA_BYTES == URAID_SB_AREA_BYTES, "the superblock area as array.h says");

struct sb_waiter {
	void (*cb)(struct raid_array *a, int status);
	struct sb_waiter *next;
};

struct sb_writer {
	uint64_t round_need; /* sb_need when the round started */
	bool busy;
	struct sb_waiter *cur, *next;
	bool again;
	unsigned pending;
	unsigned written;
	struct sb round;
	uint8_t *bufs[RAID_MAX_MEMBERS];
	uint8_t *jbuf; /* the journal device's copy */
};

static void sb_round_start(struct raid_array *a);

static uint32_t
slot_state(struct raid_array *a, unsigned i)
{
	int st = atomic_load(&a->members[i].state);

	if (st == URAID_MEMBER_ACTIVE || (a->rebuild_finishing & (1ull << i)))
		return SB_SLOT_ACTIVE;
	if (st == URAID_MEMBER_REBUILDING)
		return SB_SLOT_REBUILDING;
	return a->members[i].desc ? SB_SLOT_FAILED : SB_SLOT_MISSING;
}

static void
sb_build(struct raid_array *a, struct sb *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->generation = a->sb.generation + 1;
	memcpy(sb->array_uuid, a->bdev.uuid, 16);
	snprintf(sb->name, sizeof(sb->name), "%s", a->bdev.name);
	sb->level = a->l.level;
	sb->raid5_layout = a->l.level == URAID_RAID5 ? a->l.r5_layout : 0;
	sb->strip_size_kb = a->strip_size_kb;
	sb->block_size = a->bdev.block_size;
	sb->k = a->l.k;
	sb->m = a->l.m;
	sb->copies = a->l.copies;
	sb->num_slots = a->l.n;
	if (a->draid != NULL) {
		sb->draid_spares = a->draid->s;
		sb->draid_bases = a->draid->bases;
		sb->draid_seed = a->draid->seed;
		for (unsigned j = 0; j < a->draid->s; j++) {
			int st = atomic_load(&a->ds[j].state);

			if (st == DS_FREE)
				continue;
			sb->draid_ds[j].state = (uint32_t)st;
			sb->draid_ds[j].slot = atomic_load(&a->ds[j].slot);
			sb->draid_ds[j].done = st == DS_FULL ? 0 : atomic_load(&a->ds[j].done);
		}
	}
	sb->array_blocks = a->lsa ? layout_array_blocks(&a->l) : a->bdev.num_blocks;
	sb->flags = (a->sb_clean ? SB_FLAG_CLEAN : 0) | (a->journal_wb ? SB_FLAG_WRITE_BACK : 0) |
		    (a->jdesc ? SB_FLAG_JOURNAL_DEV : 0) |
		    (a->lsa_cost_benefit ? SB_FLAG_LOG_COST_BENEFIT : 0);
	if (a->jdesc)
		memcpy(sb->journal_uuid, a->journal_uuid, 16);
	sb->consistency_policy = a->policy;
	sb->bitmap_offset_blocks = a->bm_offset_blocks;
	sb->bitmap_blocks = a->bm_blocks;
	sb->bitmap_region_units = a->bm_region_units;
	sb->ppl_offset_blocks = a->ppl_offset_blocks;
	sb->ppl_blocks = a->ppl_blocks;
	sb->log_epoch = a->log_epoch;
	if (a->lsa != NULL) {
		sb->log_ring_blocks = a->sb_log_ring;
		sb->log_zone_blocks = a->sb_zone_blocks;
		sb->log_zone_capacity = a->sb_zone_capacity;
		sb->log_array_blocks = a->bdev.num_blocks;
	}
	for (unsigned i = 0; i < a->l.n; i++) {
		memcpy(sb->slots[i].uuid, a->slot_uuid[i], 16);
		sb->slots[i].state = slot_state(a, i);
		if (sb->slots[i].state == SB_SLOT_REBUILDING && a->members[i].catch_up)
			sb->slots[i].flags = SB_SLOT_FLAG_CATCH_UP;
		if (sb->slots[i].state == SB_SLOT_FAILED || sb->slots[i].state == SB_SLOT_MISSING) {
			const struct sb_slot *was = &a->sb.slots[i];

			/* Kept from the round that first recorded the departure. */
			sb->slots[i].left_generation =
				was->left_generation != 0 && !memcmp(was->uuid, a->slot_uuid[i], 16)
					? was->left_generation
					: sb->generation;
		}
		sb->slots[i].data_offset_blocks = a->data_offset_blocks;
		sb->slots[i].data_blocks = a->l.level == URAID_CONCAT
						   ? a->l.concat_start[i + 1] - a->l.concat_start[i]
						   : a->l.member_blocks;
		if (sb->slots[i].state == SB_SLOT_REBUILDING)
			sb->slots[i].rebuild_checkpoint_blocks =
				atomic_load(&a->members[i].rebuilt) * a->l.strip_blocks;
	}
}

static void
sb_round_done(struct raid_array *a)
{
	struct sb_writer *w = a->sbw;
	struct sb_waiter *list = w->cur, *next;
	int status = w->written > 0 ? 0 : -EIO;

	if (w->written > 0) {
		a->sb = w->round;
		for (unsigned j = 0; a->draid != NULL && j < a->draid->s; j++) {
			const struct sb_dspare *d = &w->round.draid_ds[j];

			if (d->state == (uint32_t)atomic_load(&a->ds[j].state) &&
			    d->slot == atomic_load(&a->ds[j].slot) &&
			    d->done <= atomic_load(&a->ds[j].done))
				atomic_store(&a->ds[j].durable, d->done);
		}
		for (unsigned i = 0; i < a->l.n; i++) {
			struct raid_member *mb = &a->members[i];
			uint64_t d =
				w->round.slots[i].rebuild_checkpoint_blocks / a->l.strip_blocks;

			if (w->round.slots[i].state != SB_SLOT_REBUILDING ||
			    atomic_load(&mb->state) != URAID_MEMBER_REBUILDING)
				continue;
			if (d > atomic_load(&mb->rebuilt))
				d = atomic_load(&mb->rebuilt); /* a new rebuild since */
			atomic_store(&mb->durable, d);
		}
	}
	/* Failures counted before this round are now as durable as they can be (if no member
	 * took the write, the array is offline and holding writes longer helps nobody).
	 * Release: the held writes' pollers acquire it. */
	atomic_store_explicit(&a->sb_done, w->round_need, memory_order_release);
	for (unsigned i = 0; i < a->l.n; i++) {
		uraid_dma_free(w->bufs[i]);
		w->bufs[i] = NULL;
	}
	uraid_dma_free(w->jbuf);
	w->jbuf = NULL;
	w->cur = NULL;
	w->busy = false;
	if (w->again) {
		w->again = false;
		w->cur = w->next;
		w->next = NULL;
		sb_round_start(a);
	}
	for (; list != NULL; list = next) {
		next = list->next;
		if (list->cb)
			list->cb(a, status);
		free(list);
	}
	if (status == 0 && a->rebuild_unrecorded) {
		/* A rebuild waited for its targets to be recorded: perhaps by this round. */
		a->rebuild_unrecorded = false;
		raid_rebuild_kick(a);
	}
}

struct sb_io {
	struct raid_array *a;
	unsigned member; /* num_slots: the journal device */
	bool backup;	 /* writing the backup copy: the primary is durable */
};

static int sb_write_copy(struct sb_io *io);

static void
sb_write_done(void *arg, int status)
{
	struct sb_io *io = arg;
	struct raid_array *a = io->a;
	int rc;

	if (status == 0 && !io->backup) {
		crash_point(CRASH_SB_PRIMARY);
		io->backup = true;
		rc = sb_write_copy(io);
		if (rc == 0)
			return;
		status = rc;
	}
	if (status != 0 && io->member == a->l.n)
		raid_journal_failed(a, status);
	else if (status != 0)
		raid_member_failed(a, io->member, status);
	else if (io->member < a->l.n)
		a->sbw->written++;
	free(io);
	if (--a->sbw->pending == 0)
		sb_round_done(a);
}

/* One copy (primary at 0, backup right after it) of the round's superblock, with FUA. */
static int
sb_write_copy(struct sb_io *io)
{
	struct raid_array *a = io->a;
	struct raid_channel *rch = raid_owner_channel(a);
	uint32_t bs = a->bdev.block_size;
	bool j = io->member == a->l.n;
	uint8_t *buf = j ? a->sbw->jbuf : a->sbw->bufs[io->member];

	/* A member let go of meanwhile (its device removed) has no descriptor any more. */
	if (rch == NULL ||
	    (j ? rch->jch == NULL || a->jdesc == NULL : rch->mdesc[io->member] == NULL))
		return -ENODEV;
	return uraid_bdev_write(j ? a->jdesc : rch->mdesc[io->member],
				j ? rch->jch : rch->mch[io->member],
				io->backup ? buf + SB_BYTES : buf, io->backup ? SB_BYTES / bs : 0,
				SB_BYTES / bs, URAID_IO_FUA, sb_write_done, io);
}

/* Encode sb (zeroes when wiping) into a new buffer at *buf and start writing it to member
 * (num_slots: the journal device). */
static void
sb_copy_start(struct raid_array *a, unsigned member, uint8_t **buf, const struct sb *sb)
{
	struct sb_writer *w = a->sbw;
	struct sb_io *io;
	int rc;

	*buf = uraid_dma_alloc(4096, SB_AREA_BYTES);
	io = malloc(sizeof(*io));
	if (*buf == NULL || io == NULL) {
		free(io);
		return;
	}
	if (a->sb_wipe) {
		memset(*buf, 0, SB_AREA_BYTES);
	} else {
		sb_encode(sb, *buf);
		memcpy(*buf + SB_BYTES, *buf, SB_BYTES);
	}
	io->a = a;
	io->member = member;
	io->backup = false;
	w->pending++;
	rc = sb_write_copy(io);
	if (rc != 0) {
		w->pending--;
		free(io);
		if (member == a->l.n)
			raid_journal_failed(a, rc);
		else
			raid_member_failed(a, member, rc);
	}
}

/* Write the round's superblock to every usable member, and the journal device's copy
 * (this_slot 0, SB_FLAG_THIS_JOURNAL: assembly finds the device by it). */
static void
sb_round_write(struct raid_array *a)
{
	struct sb_writer *w = a->sbw;
	struct raid_channel *rch = raid_owner_channel(a);

	crash_point(CRASH_SB_FLUSHED);
	w->pending = 1;
	for (unsigned i = 0; i < a->l.n && rch != NULL; i++) {
		if (!raid_member_usable(rch, i))
			continue;
		w->round.this_slot = i;
		sb_copy_start(a, i, &w->bufs[i], &w->round);
	}
	if (a->jdesc != NULL && !atomic_load(&a->jfailed)) {
		struct sb copy = w->round;

		copy.this_slot = 0;
		copy.flags |= SB_FLAG_THIS_JOURNAL;
		sb_copy_start(a, a->l.n, &w->jbuf, &copy);
	}
	if (--w->pending == 0)
		sb_round_done(a);
}

/* The round records a member failed or missing that the last one had in the array. */
static bool
round_adds_failure(const struct raid_array *a, const struct sb *round)
{
	for (unsigned i = 0; i < a->l.n; i++) {
		uint32_t was = a->sb.slots[i].state, now = round->slots[i].state;

		if ((was == SB_SLOT_ACTIVE || was == SB_SLOT_REBUILDING) &&
		    (now == SB_SLOT_FAILED || now == SB_SLOT_MISSING))
			return true;
	}
	return false;
}

static void
sb_flush_all_done(struct raid_array *a)
{
	if (--a->sbw->pending == 0)
		sb_round_write(a);
}

static void
sb_flush_done(void *arg, int status)
{
	struct sb_io *io = arg;
	struct raid_array *a = io->a;

	if (status != 0)
		raid_member_failed(a, io->member, status);
	free(io);
	if (--a->sbw->pending == 0)
		sb_round_write(a);
}

/*
 * A round: take the superblock's contents now (slot states, rebuild positions, the clean
 * flag), flush every member, then write it. What the superblock claims (a member rebuilt up
 * to here, the array shut down cleanly, a member failed before these writes) is then backed
 * by data on stable media, not by data still in a volatile cache.
 */
static void
sb_round_start(struct raid_array *a)
{
	struct sb_writer *w = a->sbw;
	struct raid_channel *rch = raid_owner_channel(a);

	w->busy = true;
	w->written = 0;
	w->pending = 1;
	w->round_need = atomic_load_explicit(&a->sb_need, memory_order_acquire);
	sb_build(a, &w->round);
	if (raid_logged(a) && !a->sb_wipe && round_adds_failure(a, &w->round)) {
		w->pending++;
		ppl_flush_all(a, sb_flush_all_done);
	}
	for (unsigned i = 0; i < a->l.n && rch != NULL && !a->sb_wipe; i++) {
		struct sb_io *io;

		if (!raid_member_usable(rch, i) || (io = malloc(sizeof(*io))) == NULL)
			continue;
		io->a = a;
		io->member = i;
		w->pending++;
		if (uraid_bdev_flush(rch->mdesc[i], rch->mch[i], sb_flush_done, io) != 0) {
			w->pending--;
			free(io);
		}
	}
	if (--w->pending == 0)
		sb_round_write(a);
}

struct sb_request {
	struct raid_array *a;
	void (*cb)(struct raid_array *a, int status);
};

static void
sb_request_msg(void *arg)
{
	struct sb_request *req = arg;
	struct raid_array *a = req->a;
	struct sb_waiter *wt = calloc(1, sizeof(*wt));
	struct sb_writer *w;

	if (a->sbw == NULL)
		a->sbw = calloc(1, sizeof(*a->sbw));
	w = a->sbw;
	if (w == NULL || wt == NULL) {
		free(wt);
		if (req->cb)
			req->cb(a, -ENOMEM);
		free(req);
		return;
	}
	wt->cb = req->cb;
	free(req);
	if (a->sb_closed) {
		/* The array is going away and its members with it. */
		if (wt->cb)
			wt->cb(a, -ENODEV);
		free(wt);
		return;
	}
	if (w->busy) {
		wt->next = w->next;
		w->next = wt;
		w->again = true;
		return;
	}
	wt->next = w->cur;
	w->cur = wt;
	sb_round_start(a);
}

void
raid_sb_update(struct raid_array *a, void (*cb)(struct raid_array *a, int status))
{
	struct sb_request *req = malloc(sizeof(*req));

	if (req == NULL) {
		LOG_ERR("%s: out of memory for a superblock update", a->bdev.name);
		return;
	}
	req->a = a;
	req->cb = cb;
	uraid_reactor_send(uraid_reactor_get(0), sb_request_msg, req);
}

bool
raid_sb_writer_busy(const struct raid_array *a)
{
	return a->sbw != NULL && a->sbw->busy;
}

void
raid_sb_writer_free(struct raid_array *a)
{
	free(a->sbw);
	a->sbw = NULL;
}

struct sync_wait {
	_Atomic bool done;
	int status;
};

static struct sync_wait *g_sync_wait; /* control thread only; one wait at a time */

static void
sync_cb(struct raid_array *a UNUSED, int status)
{
	g_sync_wait->status = status;
	atomic_store_explicit(&g_sync_wait->done, true, memory_order_release);
}

int
raid_sb_write_sync(struct raid_array *a)
{
	struct sync_wait w = {false, 0};

	g_sync_wait = &w;
	raid_sb_update(a, sync_cb);
	uraid_runtime_wait(&w.done);
	g_sync_wait = NULL;
	return w.status;
}

struct put_all {
	struct raid_array *a;
	_Atomic unsigned left;
	_Atomic bool done;
};

static void
put_owner_msg(void *arg)
{
	struct put_all *p = arg;
	unsigned r = uraid_reactor_index(uraid_reactor_self());

	uraid_put_io_channel(p->a->owner_ch[r]);
	p->a->owner_ch[r] = NULL;
	if (atomic_fetch_sub(&p->left, 1) == 1)
		atomic_store_explicit(&p->done, true, memory_order_release);
}

void
raid_release_owner_channels_sync(struct raid_array *a)
{
	struct put_all p = {a, uraid_reactor_count(), false};

	for (unsigned r = 0; r < uraid_reactor_count(); r++)
		uraid_reactor_send(uraid_reactor_get(r), put_owner_msg, &p);
	uraid_runtime_wait(&p.done);
	/* Let the deferred channel destruction run before the device goes. */
	if (uraid_runtime_is_manual())
		uraid_runtime_poll_until_idle(100);
}

/* --- reading --- */

/* The superblock area (SB_AREA_BYTES from the start of a member): the primary copy, else the
 * backup. 0, or the primary's reason. */
static int
sb_area_decode(const uint8_t *buf, struct sb *sb, bool *used_backup, char *err, size_t err_len)
{
	char why[128];

	*used_backup = false;
	if (sb_decode(buf, SB_BYTES, sb, why, sizeof(why)) == 0)
		return 0;
	if (sb_decode(buf + SB_BYTES, SB_BYTES, sb, err, err_len) == 0) {
		*used_backup = true;
		return 0;
	}
	err_set(err, err_len, "%s", why);
	return -EBADMSG;
}

int
raid_sb_read(struct uraid_bdev_desc *desc, struct sb *sb, bool *used_backup, char *err,
	     size_t err_len)
{
	struct uraid_bdev *bdev = uraid_bdev_desc_get_bdev(desc);
	uint32_t bs = uraid_bdev_get_block_size(bdev);
	uint8_t *buf;
	int rc;

	*used_backup = false;
	if (uraid_bdev_get_num_blocks(bdev) * bs < SB_AREA_BYTES) {
		err_set(err, err_len, "too small to hold a superblock");
		return -EBADMSG;
	}
	buf = uraid_dma_alloc(4096, SB_AREA_BYTES);
	if (buf == NULL)
		return -ENOMEM;
	rc = uraid_bdev_io_sync(desc, URAID_IO_READ, buf, 0, SB_AREA_BYTES / bs);
	if (rc != 0) {
		err_set(err, err_len, "cannot read: %s", strerror(-rc));
		uraid_dma_free(buf);
		return rc;
	}
	rc = sb_area_decode(buf, sb, used_backup, err, err_len);
	uraid_dma_free(buf);
	return rc;
}

/* The superblock sb (found on a member or the journal device of o) is of the array o names:
 * the same name (or uuid, when o gives one) and, where o says, the same shape. */
static bool
sb_is_of(const struct sb *sb, const struct uraid_array_opts *o)
{
	if (o->uuid != NULL ? memcmp(sb->array_uuid, o->uuid, 16) != 0
			    : strcmp(sb->name, o->name) != 0)
		return false;
	if (sb->flags & SB_FLAG_THIS_JOURNAL)
		return true;
	return sb->level == o->level && sb->num_slots == o->num_members &&
	       (o->strip_size_kb == 0 || sb->strip_size_kb == o->strip_size_kb) &&
	       ((o->level != URAID_EC && o->level != URAID_DRAID) ||
		((o->data_chunks == 0 || sb->k == o->data_chunks) &&
		 (o->parity_chunks == 0 || sb->m == o->parity_chunks))) &&
	       (o->level != URAID_DRAID || o->spares == 0 || sb->draid_spares == o->spares) &&
	       (o->level != URAID_RAID10 || o->copies == 0 || sb->copies == o->copies);
}

int
uraid_probe_superblock(const void *area, size_t len, struct uraid_member_probe *p, char *err,
		       size_t err_len)
{
	struct sb sb;

	memset(p, 0, sizeof(*p));
	if (len < SB_AREA_BYTES) {
		err_set(err, err_len, "too small to hold a superblock");
		return -ENOENT;
	}
	if (sb_area_decode(area, &sb, &p->backup, err, err_len) != 0)
		return -ENOENT;
	snprintf(p->array, sizeof(p->array), "%s", sb.name);
	memcpy(p->array_uuid, sb.array_uuid, 16);
	p->slot = sb.this_slot;
	p->journal = (sb.flags & SB_FLAG_THIS_JOURNAL) != 0;
	p->block_size = sb.block_size;
	p->generation = sb.generation;
	return 0;
}

int
raid_check_no_superblocks(const struct uraid_array_opts *o, char *err, size_t err_len)
{
	unsigned same = 0;

	/* The members, then the journal device. */
	for (unsigned i = 0; i <= o->num_members && i <= RAID_MAX_MEMBERS; i++) {
		const char *name = i < o->num_members ? o->members[i] : o->journal_bdev;
		struct uraid_bdev_desc *desc;
		struct sb sb;
		char why[128];
		bool backup;
		int rc;

		if (name == NULL || uraid_bdev_open(name, false, NULL, NULL, &desc) != 0)
			continue; /* create itself reports missing members */
		rc = raid_sb_read(desc, &sb, &backup, why, sizeof(why));
		uraid_bdev_close(desc);
		if (rc == 0 && o->superblock && sb_is_of(&sb, o)) {
			same++;
			continue;
		}
		if (rc == 0) {
			char where[32] = "its journal device";

			if (!(sb.flags & SB_FLAG_THIS_JOURNAL))
				snprintf(where, sizeof(where), "slot %u", sb.this_slot);
			err_set(err, err_len,
				"%s '%s' carries a superblock of array '%s' (%s); delete that "
				"array with clear_superblocks, or create with force",
				i < o->num_members ? "member" : "journal device", name, sb.name,
				where);
			return -EEXIST;
		}
	}
	return same ? 1 : 0;
}

int
raid_create_or_assemble(const struct uraid_array_opts *o, struct uraid_bdev **out, char *err,
			size_t err_len)
{
	struct uraid_bdev *b = uraid_bdev_get_by_name(o->name);
	char report[4096] = "";
	const char *line;

	if (b == NULL) {
		int rc = uraid_array_examine(false, report, sizeof(report));

		if (rc < 0) {
			err_set(err, err_len, "its members carry it, but examining them failed: %s",
				strerror(-rc));
			return rc;
		}
		b = uraid_bdev_get_by_name(o->name);
	}
	if (b != NULL && uraid_bdev_is_array(b)) {
		LOG_NOTE("%s: its members carry it already: assembled, not created", o->name);
		*out = b;
		return 0;
	}
	/* What examine said about it. */
	for (line = report; *line != '\0';
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
		size_t n = strlen(o->name);

		if (strncmp(line, o->name, n) == 0 && line[n] == ':') {
			const char *end = strchr(line, '\n');

			err_set(err, err_len, "its members carry it, but it cannot start: %.*s",
				(int)(end ? end - line : (long)strlen(line)), line);
			return -ENODEV;
		}
	}
	err_set(err, err_len, "its members carry it, but %s",
		b != NULL ? "a bdev of that name is not an array" : "it was not found on them");
	return b != NULL ? -EEXIST : -ENODEV;
}

/* --- assembly --- */

struct found {
	char name[URAID_BDEV_NAME_MAX];
	struct sb sb;
	bool backup;
};

struct scan {
	struct found *f;
	unsigned n, cap;
};

static int
scan_one(struct uraid_bdev *bdev, void *ctx)
{
	struct scan *sc = ctx;
	struct uraid_bdev_desc *desc;
	char why[128];
	struct found fd = {0};

	if (uraid_bdev_claimed_by(bdev) != NULL)
		return 0;
	if (uraid_bdev_open(uraid_bdev_get_name(bdev), false, NULL, NULL, &desc) != 0)
		return 0;
	if (raid_sb_read(desc, &fd.sb, &fd.backup, why, sizeof(why)) == 0) {
		snprintf(fd.name, sizeof(fd.name), "%s", uraid_bdev_get_name(bdev));
		if (fd.backup)
			LOG_WARNING("%s: primary superblock is damaged; using the backup copy",
				    fd.name);
		if (sc->n == sc->cap) {
			unsigned cap = sc->cap ? sc->cap * 2 : 16;
			struct found *nf = realloc(sc->f, cap * sizeof(*nf));

			if (nf == NULL) {
				uraid_bdev_close(desc);
				return -ENOMEM;
			}
			sc->f = nf;
			sc->cap = cap;
		}
		sc->f[sc->n++] = fd;
	}
	uraid_bdev_close(desc);
	return 0;
}

static void report_line(char *report, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
report_line(char *report, size_t len, const char *fmt, ...)
{
	size_t used = strlen(report);
	va_list ap;

	if (used + 2 >= len)
		return;
	if (used > 0)
		report[used++] = '\n';
	va_start(ap, fmt);
	vsnprintf(report + used, len - used, fmt, ap);
	va_end(ap);
}

/* Start the array described by the members in f[idx[0..cnt)]. */
static int
assemble_group(struct found *f, const unsigned *idx, unsigned cnt, bool force, bool whole,
	       char *report, size_t len)
{
	const struct sb *best = NULL;
	const char *members[RAID_MAX_MEMBERS] = {0}, *journal = NULL;
	char why[RAID_MAX_MEMBERS][160] = {{0}};
	struct uraid_array_opts o = {0};
	struct uraid_array_info info;
	struct uraid_bdev *bdev;
	char err[256], missing[2048] = "";
	unsigned present = 0;
	uint64_t catch_up = 0;
	struct sb *truth;
	int rc;

	/* The truth is the newest member copy (a journal device's names no slot). */
	for (unsigned i = 0; i < cnt; i++) {
		const struct sb *c = &f[idx[i]].sb;

		if (!(c->flags & SB_FLAG_THIS_JOURNAL) &&
		    (best == NULL || c->generation > best->generation))
			best = c;
	}
	if (best == NULL) {
		report_line(report, len, "%s: not started: only its journal device (%s) is here",
			    f[idx[0]].sb.name, f[idx[0]].name);
		return -ENODEV;
	}
	for (unsigned i = 0; i < cnt; i++) {
		const struct found *c = &f[idx[i]];

		if (!(c->sb.flags & SB_FLAG_THIS_JOURNAL) || journal != NULL)
			continue;
		if (!(best->flags & SB_FLAG_JOURNAL_DEV) ||
		    memcmp(c->sb.journal_uuid, best->journal_uuid, 16) != 0)
			LOG_WARNING("%s: was a journal device of array %s but is not its journal "
				    "now; left out",
				    c->name, best->name);
		else if (c->sb.generation + 1 < best->generation)
			LOG_WARNING(
				"%s: journal device of %s is stale (generation %lu < %lu); left "
				"out",
				c->name, best->name, (unsigned long)c->sb.generation,
				(unsigned long)best->generation);
		else
			journal = c->name;
	}
	for (unsigned s = 0; s < best->num_slots; s++)
		snprintf(why[s], sizeof(why[s]), "missing");
	for (unsigned i = 0; i < cnt; i++) {
		const struct found *c = &f[idx[i]];
		unsigned s = c->sb.this_slot;

		if (c->sb.flags & SB_FLAG_THIS_JOURNAL)
			continue;
		if (s >= best->num_slots || memcmp(c->sb.slots[s].uuid, best->slots[s].uuid, 16)) {
			LOG_WARNING("%s: was slot %u of array %s, which another member holds now "
				    "(it was replaced); left out",
				    c->name, s, best->name);
			continue;
		}
		if (members[s] != NULL)
			continue; /* two copies of one member: the first one found */
		if (sb_can_catch_up(best, &c->sb, s)) {
			members[s] = c->name;
			catch_up |= 1ull << s;
			snprintf(why[s], sizeof(why[s]), "catching up (%s, written regions only)",
				 c->name);
			continue;
		}
		/* One generation behind is the round a crash interrupted: the member had not
		 * failed when that round was taken (else the round would say so), and writes
		 * that skipped it since are held until a later round, so none was
		 * acknowledged. Further behind, it missed a completed round: stale. */
		if (c->sb.generation + 1 < best->generation) {
			snprintf(why[s], sizeof(why[s]), "stale (%s, generation %lu < %lu)",
				 c->name, (unsigned long)c->sb.generation,
				 (unsigned long)best->generation);
			continue;
		}
		if (best->slots[s].state != SB_SLOT_ACTIVE &&
		    best->slots[s].state != SB_SLOT_REBUILDING) {
			snprintf(why[s], sizeof(why[s]), "%s (%s)",
				 sb_slot_state_name(best->slots[s].state), c->name);
			continue;
		}
		members[s] = c->name;
		if (best->slots[s].state == SB_SLOT_ACTIVE)
			present++;
		else
			snprintf(why[s], sizeof(why[s]), "rebuilding (%s, from block %lu)", c->name,
				 (unsigned long)best->slots[s].rebuild_checkpoint_blocks);
	}
	if (whole) {
		/* Only when every member it had (and its journal device) is here. */
		for (unsigned s = 0; s < best->num_slots; s++) {
			if (members[s] == NULL && (best->slots[s].state == SB_SLOT_ACTIVE ||
						   best->slots[s].state == SB_SLOT_REBUILDING))
				return -EAGAIN;
		}
		if ((best->flags & SB_FLAG_JOURNAL_DEV) && journal == NULL)
			return -EAGAIN;
	}
	for (unsigned s = 0; s < best->num_slots; s++) {
		char part[200];

		if (members[s] != NULL && best->slots[s].state == SB_SLOT_ACTIVE)
			continue;
		snprintf(part, sizeof(part), "%sslot %u %s", missing[0] ? ", " : "", s, why[s]);
		strncat(missing, part, sizeof(missing) - strlen(missing) - 1);
	}
	/* Mirrors have no hole (each copy is a whole version, and the bitmap resyncs the copies
	 * left); ppl and the journal mend parity before the start; a log array never wrote over
	 * a stripe it maps. Parity otherwise may not match the data the missing member's blocks
	 * would be rebuilt from. */
	if (present < best->num_slots && !(best->flags & SB_FLAG_CLEAN) && !force && best->m > 0 &&
	    best->consistency_policy != SB_POLICY_PPL &&
	    best->consistency_policy != SB_POLICY_JOURNAL &&
	    best->consistency_policy != SB_POLICY_LOG) {
		report_line(
			report, len,
			"%s: not started: it was not shut down cleanly and is degraded (%s), so "
			"parity may not match data; start it with force",
			best->name, missing);
		return -EUCLEAN;
	}
	o.name = best->name;
	o.level = best->level;
	o.raid5_layout = best->raid5_layout;
	o.strip_size_kb = best->strip_size_kb;
	o.members = members;
	o.num_members = best->num_slots;
	o.copies = best->copies;
	o.data_chunks = best->k;
	o.parity_chunks = best->m;
	o.spares = best->draid_spares;
	o.journal_bdev = journal;
	/* A returning member starts as a rebuild of its slot that skips the clean regions. */
	truth = malloc(sizeof(*truth));
	if (truth == NULL)
		return -ENOMEM;
	*truth = *best;
	for (uint64_t m = catch_up; m; m &= m - 1) {
		struct sb_slot *sl = &truth->slots[__builtin_ctzll(m)];

		sl->state = SB_SLOT_REBUILDING;
		sl->flags = SB_SLOT_FLAG_CATCH_UP;
		sl->rebuild_checkpoint_blocks = 0;
		sl->left_generation = 0;
	}
	rc = raid_create_from_sb(&o, truth, &bdev, err, sizeof(err));
	free(truth);
	if (rc != 0) {
		report_line(report, len, "%s: not started: %s%s%s%s", best->name, err,
			    missing[0] ? "; " : "", missing,
			    missing[0] ? "; bring back a missing member (its file or device) and "
					 "examine again (bdev_raid_examine)"
				       : "");
		return rc;
	}
	uraid_array_get_info(bdev, &info);
	if (!(best->flags & SB_FLAG_CLEAN) && best->consistency_policy == SB_POLICY_NONE)
		LOG_WARNING("%s: was not shut down cleanly; run a parity check (scrub) to find "
			    "stripes a crash left inconsistent",
			    best->name);
	report_line(report, len, "%s: started, %s, %u of %u members%s%s", best->name,
		    uraid_raid_level_name(best->level), present, best->num_slots,
		    missing[0] ? ", degraded: " : "", missing);
	return 0;
}

static int
examine(bool force, bool whole, char *report, size_t report_len)
{
	struct scan sc = {0};
	bool *used;
	int started = 0, rc;

	if (report_len)
		report[0] = '\0';
	rc = uraid_bdev_foreach(scan_one, &sc);
	if (rc != 0) {
		free(sc.f);
		return rc;
	}
	used = calloc(sc.n ? sc.n : 1, sizeof(*used));
	if (used == NULL) {
		free(sc.f);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < sc.n; i++) {
		unsigned idx[64], cnt = 0;

		if (used[i])
			continue;
		for (unsigned j = i; j < sc.n && cnt < ARRAY_SIZE(idx); j++) {
			if (!used[j] &&
			    memcmp(sc.f[j].sb.array_uuid, sc.f[i].sb.array_uuid, 16) == 0) {
				used[j] = true;
				idx[cnt++] = j;
			}
		}
		if (uraid_bdev_get_by_name(sc.f[i].sb.name) != NULL) {
			report_line(report, report_len, "%s: already running", sc.f[i].sb.name);
			continue;
		}
		if (assemble_group(sc.f, idx, cnt, force, whole, report, report_len) == 0)
			started++;
	}
	free(used);
	free(sc.f);
	return started;
}

int
uraid_array_examine(bool force, char *report, size_t report_len)
{
	return examine(force, false, report, report_len);
}

int
uraid_array_examine_whole(char *report, size_t report_len)
{
	return examine(false, true, report, report_len);
}

/* --- delete --- */

void
uraid_array_delete(struct uraid_bdev *array, bool clear_superblocks, uraid_bdev_unregister_cb cb,
		   void *cb_arg)
{
	struct raid_array *a;

	if (!uraid_bdev_is_array(array)) {
		if (cb)
			cb(cb_arg, -EINVAL);
		return;
	}
	a = raid_from_bdev(array);
	/* Read by the destruct path on reactor 0, after the unregister below has run there. */
	a->sb_wipe = clear_superblocks && a->has_sb;
	uraid_bdev_unregister(array, cb, cb_arg);
}
