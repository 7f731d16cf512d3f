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

static bool
redundant(const struct uraid_array_info *in)
{
	return in->parity_chunks > 0 || in->copies > 1 || in->level == URAID_RAID1;
}

int
member_back(const char *name)
{
	struct uraid_array_info in;
	struct uraid_bdev *array;
	const char *an;
	unsigned s;
	char err[256];

	array = raid_array_holding(name, &in, &s);
	if (array == NULL)
		return 0;
	an = uraid_bdev_get_name(array);
	if (!redundant(&in) || !in.online)
		return 1; /* nothing to catch up from: it serves as it is */
	if (in.members[s].state == URAID_MEMBER_ACTIVE) {
		/* The array sent it nothing while it was away, but the other end may not be what
		 * it was (a server restarted over other storage): it is taken back as any
		 * returning member is, by its superblock. Not when that would leave the array
		 * short of its tolerance. */
		if (in.failed_members > 0) {
			LOG_WARNING("%s: %s is back; %s is degraded, so it stays in use as it is",
				    an, name, an);
			return 1;
		}
		if (uraid_array_fail_member(array, s) != 0)
			return 1;
	} else if (in.members[s].state != URAID_MEMBER_FAILED) {
		return 1; /* being rebuilt already */
	}
	if (uraid_array_add_spare(array, name, err, sizeof(err)) != 0)
		LOG_ERR("%s: %s is back but cannot be taken back: %s", an, name, err);
	else
		LOG_NOTE("%s: %s is back: taken back into slot %u", an, name, s);
	return 1;
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
