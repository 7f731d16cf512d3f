/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the bdev interface needs in both runtimes (the native bdev layer and the SPDK port):
 * a bdev's properties, iovec and UUID helpers.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/common.h"
#include "uraid/bdev_module.h"
#include "uraid/thread.h"

/* --- iovec helpers --- */

uint64_t
uraid_iov_length(const struct iovec *iov, int iovcnt)
{
	uint64_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	return len;
}

void
uraid_iov_to_buf(void *buf, const struct iovec *iov, int iovcnt, uint64_t offset, uint64_t len)
{
	uint8_t *out = buf;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		uint64_t n;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - offset;
		if (n > len)
			n = len;
		memcpy(out, (uint8_t *)iov[i].iov_base + offset, n);
		out += n;
		len -= n;
		offset = 0;
	}
}

void
uraid_iov_from_buf(const struct iovec *iov, int iovcnt, uint64_t offset, const void *buf,
		   uint64_t len)
{
	const uint8_t *in = buf;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		uint64_t n;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - offset;
		if (n > len)
			n = len;
		memcpy((uint8_t *)iov[i].iov_base + offset, in, n);
		in += n;
		len -= n;
		offset = 0;
	}
}

int
uraid_iov_slice(const struct iovec *iov, int iovcnt, uint64_t offset, uint64_t len,
		struct iovec *dst, int dst_max)
{
	int n = 0;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		uint64_t take;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - offset;
		if (take > len)
			take = len;
		if (dst != NULL) {
			if (n == dst_max)
				return -ENOSPC;
			dst[n].iov_base = (uint8_t *)iov[i].iov_base + offset;
			dst[n].iov_len = take;
		}
		n++;
		len -= take;
		offset = 0;
	}
	return n;
}

void
uraid_iov_memset(const struct iovec *iov, int iovcnt, int c)
{
	for (int i = 0; i < iovcnt; i++)
		memset(iov[i].iov_base, c, iov[i].iov_len);
}

/* --- UUIDs --- */

int
uraid_uuid_parse(const char *text, uint8_t uuid[16])
{
	static const int dash_at[] = {8, 13, 18, 23};
	int byte = 0;

	if (strlen(text) != 36)
		return -EINVAL;
	for (int i = 0; i < 36;) {
		unsigned v;

		if (i == dash_at[0] || i == dash_at[1] || i == dash_at[2] || i == dash_at[3]) {
			if (text[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		if (sscanf(text + i, "%2x", &v) != 1 || !isxdigit((unsigned char)text[i]) ||
		    !isxdigit((unsigned char)text[i + 1]))
			return -EINVAL;
		uuid[byte++] = (uint8_t)v;
		i += 2;
	}
	return 0;
}

void
uraid_uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

void
uraid_uuid_generate(uint8_t uuid[16])
{
	if (getrandom(uuid, 16, 0) != 16) {
		struct prng p;
		uint64_t a, b;

		prng_seed(&p, (uint64_t)(uintptr_t)uuid ^ uraid_now_us());
		a = prng_next(&p);
		b = prng_next(&p);
		memcpy(uuid, &a, 8);
		memcpy(uuid + 8, &b, 8);
	}
	uuid[6] = (uuid[6] & 0x0f) | 0x40; /* version 4 */
	uuid[8] = (uuid[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

/* --- properties: the fields the module filled in --- */

const char *
uraid_bdev_get_name(const struct uraid_bdev *bdev)
{
	return bdev->name;
}

const char *
uraid_bdev_get_product(const struct uraid_bdev *bdev)
{
	return bdev->product ? bdev->product : "";
}

const uint8_t *
uraid_bdev_get_uuid(const struct uraid_bdev *bdev)
{
	return bdev->uuid;
}

uint32_t
uraid_bdev_get_block_size(const struct uraid_bdev *bdev)
{
	return bdev->block_size;
}

uint64_t
uraid_bdev_get_num_blocks(const struct uraid_bdev *bdev)
{
	return bdev->num_blocks;
}

bool
uraid_bdev_has_write_cache(const struct uraid_bdev *bdev)
{
	return bdev->write_cache;
}

bool
uraid_bdev_is_zoned(const struct uraid_bdev *bdev)
{
	return bdev->zone_size != 0;
}

uint64_t
uraid_bdev_get_zone_size(const struct uraid_bdev *bdev)
{
	return bdev->zone_size;
}

uint64_t
uraid_bdev_get_zone_capacity(const struct uraid_bdev *bdev)
{
	return bdev->zone_capacity;
}

uint32_t
uraid_bdev_get_max_open_zones(const struct uraid_bdev *bdev)
{
	return bdev->max_open_zones;
}

uint32_t
uraid_bdev_get_max_active_zones(const struct uraid_bdev *bdev)
{
	return bdev->max_active_zones;
}

uint32_t
uraid_bdev_get_optimal_open_zones(const struct uraid_bdev *bdev)
{
	return bdev->optimal_open_zones;
}

uint64_t
uraid_bdev_get_conventional_zones(const struct uraid_bdev *bdev)
{
	return bdev->conventional_zones;
}
