/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Work for the control thread that starts on a reactor: a reactor may not wait, and some
 * control functions do (taking a member back reads its superblock and waits for reactor 0).
 * Reactors post fn(arg) here; the daemon's loop (uraid serve) runs what was posted between
 * RPC rounds, within its poll period (250 ms).
 *
 * Remote members come back through here: when every connection of an NBD member is up again
 * after one was lost, the member is taken back into the arrays that hold it (member_back).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "rpc.h"
#include "bdev/bdev_priv.h"
#include "uraid/array.h"

struct control_work {
	void (*fn)(void *arg);
	void *arg;
	struct control_work *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct control_work *g_head, **g_tail = &g_head;

int
control_post(void (*fn)(void *arg), void *arg)
{
	struct control_work *w = malloc(sizeof(*w));

	if (w == NULL)
		return -ENOMEM;
	w->fn = fn;
	w->arg = arg;
	w->next = NULL;
	pthread_mutex_lock(&g_lock);
	*g_tail = w;
	g_tail = &w->next;
	pthread_mutex_unlock(&g_lock);
	return 0;
}

unsigned
control_run(void)
{
	struct control_work *w;
	unsigned n = 0;

	pthread_mutex_lock(&g_lock);
	w = g_head;
	g_head = NULL;
	g_tail = &g_head;
	pthread_mutex_unlock(&g_lock);
	while (w != NULL) {
		struct control_work *next = w->next;

		w->fn(w->arg);
		free(w);
		w = next;
		n++;
	}
	return n;
}

/* --- a member come back --- */

struct arrays {
	struct uraid_bdev *a[64];
	unsigned n;
};

static int
add_array(struct uraid_bdev *bdev, void *ctx)
{
	struct arrays *as = ctx;

	if (uraid_bdev_is_array(bdev) && as->n < ARRAY_SIZE(as->a))
		as->a[as->n++] = bdev;
	return 0;
}

static bool
redundant(const struct uraid_array_info *in)
{
	return in->parity_chunks > 0 || in->copies > 1 || in->level == URAID_RAID1;
}

int
member_back(const char *name)
{
	struct arrays as = {.n = 0};
	int found = 0;

	uraid_bdev_foreach(add_array, &as);
	for (unsigned i = 0; i < as.n; i++) {
		struct uraid_array_info in;
		const char *an = uraid_bdev_get_name(as.a[i]);
		char err[256];
		int rc;

		if (uraid_array_get_info(as.a[i], &in) != 0)
			continue;
		for (unsigned s = 0; s < in.num_members && s < ARRAY_SIZE(in.members); s++) {
			if (strcmp(in.members[s].name, name) != 0)
				continue;
			found++;
			if (!redundant(&in) || !in.online)
				break; /* nothing to catch up from: it serves as it is */
			if (in.members[s].state == URAID_MEMBER_ACTIVE) {
				/* The array sent it nothing while it was away, but the other end
				 * may not be what it was (a server restarted over other storage):
				 * it is taken back as any returning member is, by its superblock.
				 * Not when that would leave the array short of its tolerance. */
				if (in.failed_members > 0) {
					LOG_WARNING("%s: %s is back; %s is degraded, so it stays "
						    "in use as it is",
						    an, name, an);
					break;
				}
				if (uraid_array_fail_member(as.a[i], s) != 0)
					break;
			} else if (in.members[s].state != URAID_MEMBER_FAILED) {
				break; /* being rebuilt already */
			}
			rc = uraid_array_add_spare(as.a[i], name, err, sizeof(err));
			if (rc != 0)
				LOG_ERR("%s: %s is back but cannot be taken back: %s", an, name,
					err);
			else
				LOG_NOTE("%s: %s is back: taken back into slot %u", an, name, s);
			break;
		}
	}
	return found;
}

static void
member_back_work(void *arg)
{
	member_back(arg);
	free(arg);
}

/* remote_bdev_set_back_hook's hook: on a reactor, so the work goes to the control thread. */
static void
back_hook(const char *name)
{
	char *copy = strdup(name);

	if (copy == NULL || control_post(member_back_work, copy) != 0) {
		LOG_ERR("%s is back, but out of memory to take it back: add it as a spare by hand",
			name);
		free(copy);
	}
}

void
control_init(void)
{
	remote_bdev_set_back_hook(back_hook);
}
