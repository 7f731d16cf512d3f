/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC32C (Castagnoli, as iSCSI and ext4 use it) over ISA-L, for every on-disk format. */
#include <isa-l/crc.h>

#include "common.h"

uint32_t
crc32c(const void *buf, size_t len)
{
	return crc32c_more(0, buf, len);
}

uint32_t
crc32c_more(uint32_t crc, const void *buf, size_t len)
{
	return crc32_iscsi((unsigned char *)buf, (int)len, crc ^ 0xffffffffu) ^ 0xffffffffu;
}
