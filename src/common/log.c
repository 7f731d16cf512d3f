/* SPDX-License-Identifier: BSD-3-Clause */
/* Leveled logging to stderr; one line a message, safe to call from any thread. */
#include <stdio.h>
#include <strings.h>

#include "common.h"

static enum log_level g_level = LOG_NOTICE;
static const char *const g_names[] = {"error", "warning", "notice", "info", "debug"};

void
log_set_level(enum log_level level)
{
	g_level = level;
}

enum log_level
log_get_level(void)
{
	return g_level;
}

const char *
log_level_name(enum log_level level)
{
	return (unsigned)level < ARRAY_SIZE(g_names) ? g_names[level] : "?";
}

int
log_parse_level(const char *name, enum log_level *level)
{
	for (size_t i = 0; i < ARRAY_SIZE(g_names); i++) {
		if (strcasecmp(name, g_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (level > g_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fputs per line keeps lines from different reactors whole. */
	fprintf(stderr, "uraid: %s: %s\n", g_names[level], line);
}

void
err_set(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}
