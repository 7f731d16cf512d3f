/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The superblock codec: round trips, the byte positions of docs/format.md, and rejection of
 * every kind of damage (each check of the decoder is reached).
 */
#include <stdlib.h>

#include "harness.h"
#include "core/core.h"

static struct sb
sample(enum uraid_raid_level level, unsigned n, unsigned k, unsigned m)
{
	struct sb sb = {0};

	sb.generation = 7;
	for (int i = 0; i < 16; i++)
		sb.array_uuid[i] = (uint8_t)(0x10 + i);
	snprintf(sb.name, sizeof(sb.name), "array-%s", uraid_raid_level_name(level));
	sb.level = level;
	sb.strip_size_kb = 64;
	sb.block_size = 4096;
	sb.k = k;
	sb.m = m;
	sb.copies = level == URAID_RAID1 ? n : level == URAID_RAID10 ? 2 : 1;
	sb.num_slots = n;
	sb.array_blocks = 1000ull * (level >= URAID_RAID5 ? k : level == URAID_RAID0 ? n : 1);
	sb.flags = SB_FLAG_CLEAN;
	sb.this_slot = n - 1;
	for (unsigned i = 0; i < n; i++) {
		for (int b = 0; b < 16; b++)
			sb.slots[i].uuid[b] = (uint8_t)(i * 16 + b + 1);
		sb.slots[i].state = i == 1 ? SB_SLOT_FAILED : SB_SLOT_ACTIVE;
		sb.slots[i].data_offset_blocks = 256;
		sb.slots[i].data_blocks = 1000;
		sb.slots[i].rebuild_checkpoint_blocks = i == 2 ? 500 : 0;
	}
	sb.slots[1].left_generation = 6;
	if (level == URAID_DRAID) {
		sb.draid_spares = n - k - m < DRAID_MAX_SPARES ? n - k - m : DRAID_MAX_SPARES;
		sb.draid_bases = 32;
		sb.draid_seed = 0x1122334455667788ull;
	}
	return sb;
}

static void
test_round_trip(void)
{
	static const struct {
		enum uraid_raid_level level;
		unsigned n, k, m;
	} shapes[] = {{URAID_RAID0, 3, 3, 0},  {URAID_RAID1, 2, 1, 0}, {URAID_RAID10, 4, 1, 0},
		      {URAID_CONCAT, 2, 2, 0}, {URAID_RAID5, 5, 4, 1}, {URAID_RAID6, 6, 4, 2},
		      {URAID_EC, 11, 8, 3},    {URAID_EC, 32, 28, 4},  {URAID_DRAID, 12, 4, 2},
		      {URAID_DRAID, 32, 8, 4}};
	uint8_t buf[SB_BYTES], again[SB_BYTES];
	char err[128];

	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		struct sb sb = sample(shapes[i].level, shapes[i].n, shapes[i].k, shapes[i].m), out;

		sb_encode(&sb, buf);
		if (sb_decode(buf, sizeof(buf), &out, err, sizeof(err)) != 0) {
			fprintf(stderr, "shape %zu: %s\n", i, err);
			CHECK(!"a valid superblock did not decode");
			continue;
		}
		CHECK_EQ(out.generation, 7);
		CHECK_EQ(out.level, shapes[i].level);
		CHECK_EQ(out.num_slots, shapes[i].n);
		CHECK(strcmp(out.name, sb.name) == 0);
		CHECK_EQ(out.slots[1].state, SB_SLOT_FAILED);
		CHECK_EQ(out.slots[1].left_generation, 6);
		CHECK_EQ(out.slots[shapes[i].n - 1].data_offset_blocks, 256);
		CHECK_EQ(out.draid_spares, sb.draid_spares);
		CHECK_EQ(out.draid_bases, sb.draid_bases);
		CHECK_EQ(out.draid_seed, sb.draid_seed);
		sb_encode(&out, again);
		CHECK(memcmp(buf, again, SB_BYTES) == 0);
	}
}

/* The positions docs/format.md gives, read back byte by byte. */
static void
test_format_positions(void)
{
	struct sb sb = sample(URAID_RAID6, 6, 4, 2);
	uint8_t buf[SB_BYTES];

	sb_encode(&sb, buf);
	CHECK(memcmp(buf, "URAIDSB1", 8) == 0);
	CHECK_EQ(buf[8], 1); /* version */
	CHECK_EQ(buf[12] | buf[13] << 8, 4096);
	CHECK_EQ(buf[16], 7);	 /* generation */
	CHECK_EQ(buf[24], 0x10); /* array uuid */
	CHECK(strcmp((char *)buf + 40, "array-raid6") == 0);
	CHECK_EQ(buf[104], URAID_RAID6);
	CHECK_EQ(buf[112], 64); /* strip KiB */
	CHECK_EQ(buf[116] | buf[117] << 8, 4096);
	CHECK_EQ(buf[120], 4); /* k */
	CHECK_EQ(buf[124], 2); /* m */
	CHECK_EQ(buf[132], 6); /* slots */
	CHECK_EQ(buf[136] | buf[137] << 8, 4000);
	CHECK_EQ(buf[148], SB_FLAG_CLEAN);
	CHECK_EQ(buf[152], 5); /* this slot */
	CHECK_EQ(buf[256], 1); /* slot 0 uuid */
	CHECK_EQ(buf[256 + 48 + 16], SB_SLOT_FAILED);
	CHECK_EQ(buf[256 + 24] | buf[256 + 25] << 8, 256); /* slot 0 data offset */
	CHECK_EQ(buf[256 + 2 * 48 + 40] | buf[256 + 2 * 48 + 41] << 8, 500);
	CHECK_EQ(buf[1792 + 8], 6); /* slot 1 left at generation 6 */
	CHECK_EQ(buf[1792], 0);
	{
		uint32_t crc = (uint32_t)buf[4092] | (uint32_t)buf[4093] << 8 |
			       (uint32_t)buf[4094] << 16 | (uint32_t)buf[4095] << 24;

		CHECK_EQ(crc, crc32c(buf, 4092));
	}
	CHECK_EQ(crc32c("123456789", 9), 0xe3069283); /* the CRC32C check value */
}

struct damage {
	const char *what;
	size_t off;
	uint32_t value; /* written little-endian, 4 bytes */
	const char *reason;
};

static void
put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Each field damaged (and the CRC fixed up, so the field check itself must catch it). */
static void
test_rejects_damage(void)
{
	static const struct damage d[] = {
		{"magic", 0, 0x12345678, "magic"},
		{"version", 8, 2, "version"},
		{"size", 12, 512, "size"},
		{"generation 0", 16, 0, "generation"},
		{"level", 104, 9, "level"},
		{"layout on raid6", 108, 1, "layout"},
		{"strip not a power of two", 112, 48, "strip"},
		{"block size", 116, 1024, "block size"},
		{"k", 120, 3, "shape"},
		{"m", 124, 5, "shape"},
		{"slots", 132, 33, "member count"},
		{"slots zero", 132, 0, "member count"},
		{"policy", 144, 9, "policy"},
		{"flags", 148, 0x80, "flags"},
		{"this slot", 152, 6, "slot out of range"},
		{"slot state", 256 + 16, 77, "slot state"},
		{"slot flags without a rebuild", 256 + 20, 1, "slot flags"},
		{"slot flags unknown", 256 + 48 + 20, 2, "slot flags"},
		{"departure of an active slot", 1792, 3, "departure"},
		{"departure after the generation", 1792 + 8, 8, "departure"},
		{"junk after the departures", 1792 + 6 * 8, 1, "not zero"},
		{"data offset over superblocks", 256 + 24, 1, "overlaps"},
		{"data blocks zero", 256 + 32, 0, "data area"},
		{"checkpoint beyond data", 256 + 40, 5000, "checkpoint"},
		{"junk after slots", 256 + 6 * 48 + 4, 1, "not zero"},
		{"array too large", 136, 0xffffff, "larger than"},
		{"name unterminated", 40, 0x41414141, NULL},
	};
	struct sb sb = sample(URAID_RAID6, 6, 4, 2), out;
	uint8_t good[SB_BYTES], buf[SB_BYTES];
	char err[128];

	sb_encode(&sb, good);
	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		memcpy(buf, good, SB_BYTES);
		put32le(buf + d[i].off, d[i].value);
		if (d[i].reason == NULL) /* the name: fill all 64 bytes */
			memset(buf + 40, 'A', 64);
		put32le(buf + 4092, crc32c(buf, 4092));
		err[0] = '\0';
		if (sb_decode(buf, SB_BYTES, &out, err, sizeof(err)) != -EBADMSG ||
		    (d[i].reason && strstr(err, d[i].reason) == NULL)) {
			fprintf(stderr, "damage '%s' gave '%s'\n", d[i].what, err);
			CHECK(!"damage not rejected with the right reason");
		}
	}
	/* A flipped bit without fixing the CRC. */
	memcpy(buf, good, SB_BYTES);
	buf[2000] ^= 4;
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "checksum") != NULL);
	CHECK_EQ(sb_decode(good, 100, &out, err, sizeof(err)), -EBADMSG);
	/* Random blocks never decode (and never crash). */
	for (int i = 0; i < 2000; i++) {
		for (size_t b = 0; b < SB_BYTES; b++)
			buf[b] = (uint8_t)test_rand();
		CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	}
}

/* Consistency policy fields: positions, round trip, and what the decoder refuses. */
static void
test_policy_fields(void)
{
	static const struct damage d[] = {
		{"bitmap policy without its area", 168, 0, "bitmap area"},
		{"bitmap over the data", 160, 255, "bitmap area out of range"},
		{"bitmap over the superblocks", 160, 1, "bitmap area out of range"},
		{"bitmap region zero", 176, 0, "region size"},
		{"ppl fields under bitmap", 192, 16, "ppl area"},
		{"policy beyond journal", 144, 4, "policy"},
		{"ppl policy with a bitmap", 144, SB_POLICY_PPL, "does not match"},
		{"reserved 156", 156, 1, "reserved"},
		{"reserved 172", 172, 1, "reserved"},
		{"reserved 196", 196, 1, "reserved"},
		{"log ring without the log policy", 224, 1, "log fields"},
		{"cleaner flag without the log policy", 148, SB_FLAG_LOG_COST_BENEFIT,
		 "cleaner flag"},
		{"reserved 228", 228, 1, "reserved"},
		{"log size without the log policy", 232, 1, "log fields"},
		{"zone size without the log policy", 240, 1, "log fields"},
		{"zone capacity without the log policy", 248, 1, "log fields"},
		{"journal device uuid under a bitmap", 208, 1, "journal device uuid"},
		{"catch-up of an active slot", 256 + 20, SB_SLOT_FLAG_CATCH_UP, "slot flags"},
	};
	struct sb sb = sample(URAID_RAID6, 6, 4, 2), out;
	uint8_t good[SB_BYTES], buf[SB_BYTES];
	char err[128];

	sb.consistency_policy = SB_POLICY_BITMAP;
	sb.bitmap_offset_blocks = 2;
	sb.bitmap_blocks = 2;
	sb.bitmap_region_units = 1;
	sb.log_epoch = 0x1234;
	CHECK_EQ(sb_units(&sb), (4000 + 63) / 64); /* 16-block strips, 4 data strips */
	sb_encode(&sb, good);
	CHECK_EQ(sb_decode(good, SB_BYTES, &out, err, sizeof(err)), 0);
	CHECK_EQ(out.consistency_policy, SB_POLICY_BITMAP);
	CHECK_EQ(out.bitmap_offset_blocks, 2);
	CHECK_EQ(out.bitmap_blocks, 2);
	CHECK_EQ(out.bitmap_region_units, 1);
	CHECK_EQ(out.log_epoch, 0x1234);
	CHECK_EQ(good[144], SB_POLICY_BITMAP);
	CHECK_EQ(good[160], 2);
	CHECK_EQ(good[168], 2);
	CHECK_EQ(good[176], 1);
	CHECK_EQ(good[200] | good[201] << 8, 0x1234);
	/* A member catching up (rebuilt where the bitmap says): only under a bitmap. */
	sb.slots[3].state = SB_SLOT_REBUILDING;
	sb.slots[3].flags = SB_SLOT_FLAG_CATCH_UP;
	sb_encode(&sb, buf);
	CHECK_EQ(buf[256 + 3 * 48 + 20], SB_SLOT_FLAG_CATCH_UP);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	CHECK_EQ(out.slots[3].flags, SB_SLOT_FLAG_CATCH_UP);
	put32le(buf + 144, SB_POLICY_NONE);
	memset(buf + 160, 0, 24); /* no bitmap area */
	put32le(buf + 4092, crc32c(buf, 4092));
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "slot flags") != NULL);
	sb.slots[3].state = SB_SLOT_ACTIVE;
	sb.slots[3].flags = 0;
	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		if (d[i].reason == NULL)
			continue;
		memcpy(buf, good, SB_BYTES);
		put32le(buf + d[i].off, d[i].value);
		put32le(buf + 4092, crc32c(buf, 4092));
		err[0] = '\0';
		if (sb_decode(buf, SB_BYTES, &out, err, sizeof(err)) != -EBADMSG ||
		    strstr(err, d[i].reason) == NULL) {
			fprintf(stderr, "damage '%s' gave '%s'\n", d[i].what, err);
			CHECK(!"damage not rejected with the right reason");
		}
	}
	/* A bitmap on a level without redundancy, and ppl on a mirror. */
	sb = sample(URAID_RAID0, 3, 3, 0);
	sb.consistency_policy = SB_POLICY_BITMAP;
	sb.bitmap_offset_blocks = 2;
	sb.bitmap_blocks = 2;
	sb.bitmap_region_units = 1;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "does not suit") != NULL);
	sb = sample(URAID_RAID1, 2, 1, 0);
	sb.consistency_policy = SB_POLICY_PPL;
	sb.ppl_offset_blocks = 32;
	sb.ppl_blocks = 200;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "does not suit") != NULL);
	/* The journal keeps its entries in the log area: with one it decodes, without not. */
	sb = sample(URAID_RAID5, 3, 2, 1);
	sb.consistency_policy = SB_POLICY_JOURNAL;
	sb.ppl_offset_blocks = 32;
	sb.ppl_blocks = 200;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	CHECK_EQ(out.consistency_policy, SB_POLICY_JOURNAL);
	/* Write-back is a flag of the journal, of nothing else. */
	sb.flags = SB_FLAG_WRITE_BACK;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	CHECK_EQ(out.flags, SB_FLAG_WRITE_BACK);
	sb.consistency_policy = SB_POLICY_PPL;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "without a journal") != NULL);
	sb.consistency_policy = SB_POLICY_JOURNAL;
	sb.flags = 0;
	sb.ppl_offset_blocks = 0;
	sb.ppl_blocks = 0;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "does not match") != NULL);
	/* Too many regions for the area: 1-block strips of 512-byte blocks. */
	sb = sample(URAID_RAID1, 2, 1, 0);
	sb.block_size = 512;
	sb.strip_size_kb = 1;
	sb.array_blocks = 1000;
	for (int i = 0; i < 2; i++) {
		sb.slots[i].data_offset_blocks = 2048;
		sb.slots[i].data_blocks = 1000;
	}
	sb.consistency_policy = SB_POLICY_BITMAP;
	sb.bitmap_offset_blocks = 16;
	sb.bitmap_blocks = 2; /* 4096 bits: enough for 500 */
	sb.bitmap_region_units = 1;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	sb.array_blocks = 10000;
	for (int i = 0; i < 2; i++)
		sb.slots[i].data_blocks = 10000; /* 5000 regions of one strip */
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "too small") != NULL);
}

/* The journal on a device of its own: flags bits 2 and 3, the device's uuid at 208, and its
 * areas (one per slot) checked for overflow rather than against the members' data. */
static void
test_journal_device_fields(void)
{
	struct sb sb = sample(URAID_RAID5, 3, 2, 1), out;
	uint8_t buf[SB_BYTES], bad[SB_BYTES];
	char err[128];

	sb.consistency_policy = SB_POLICY_JOURNAL;
	sb.flags |= SB_FLAG_JOURNAL_DEV;
	sb.ppl_offset_blocks = 32;
	sb.ppl_blocks = 100000; /* far beyond the members' data offset: on the device */
	for (int i = 0; i < 16; i++)
		sb.journal_uuid[i] = (uint8_t)(0xa0 + i);
	sb_encode(&sb, buf);
	CHECK_EQ(buf[148], SB_FLAG_CLEAN | SB_FLAG_JOURNAL_DEV);
	CHECK_EQ(buf[208], 0xa0);
	CHECK_EQ(buf[223], 0xaf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	CHECK(memcmp(out.journal_uuid, sb.journal_uuid, 16) == 0);
	/* The device's own copy. */
	sb.flags |= SB_FLAG_THIS_JOURNAL;
	sb.this_slot = 0;
	sb_encode(&sb, buf);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	CHECK(out.flags & SB_FLAG_THIS_JOURNAL);
	{
		static const struct damage d[] = {
			{"journal copy naming a slot", 152, 1, "journal device's copy"},
			{"device flag without a uuid", 208, 0, NULL},
			{"a uuid without the flag", 148, SB_FLAG_CLEAN, "uuid"},
			{"copy flag without the device", 148, SB_FLAG_CLEAN | SB_FLAG_THIS_JOURNAL,
			 "uuid"},
			{"journal device under ppl", 144, SB_POLICY_PPL, "journal"},
			{"areas past the end", 188, 0xffffffff, "journal device area"},
			{"reserved after the uuid", 228, 1, "reserved"},
		};

		for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
			memcpy(bad, buf, SB_BYTES);
			if (d[i].off == 208) /* the whole uuid */
				memset(bad + 208, 0, 16);
			else
				put32le(bad + d[i].off, d[i].value);
			put32le(bad + 4092, crc32c(bad, 4092));
			err[0] = '\0';
			if (sb_decode(bad, SB_BYTES, &out, err, sizeof(err)) != -EBADMSG ||
			    (d[i].reason && strstr(err, d[i].reason) == NULL)) {
				fprintf(stderr, "damage '%s' gave '%s'\n", d[i].what, err);
				CHECK(!"damage not rejected with the right reason");
			}
		}
	}
}

/* draid: the table's fields at 2048.., and what the decoder refuses of them. */
static void
test_draid_fields(void)
{
	static const struct damage d[] = {
		{"spares beyond the members", 2048, 7, "shape"},
		{"no table", 2052, 0, "table size"},
		{"table too large", 2052, DRAID_MAX_BASES + 1, "table size"},
		{"parity 5", 124, 5, "shape"},
	};
	struct sb sb = sample(URAID_DRAID, 12, 4, 2), out;
	uint8_t buf[SB_BYTES], bad[SB_BYTES];
	char err[128];

	sb_encode(&sb, buf);
	CHECK_EQ(buf[104], URAID_DRAID);
	CHECK_EQ(buf[2048], 6); /* spares: 12 - 4 - 2 */
	CHECK_EQ(buf[2052], 32);
	CHECK_EQ(buf[2056], 0x88);
	CHECK_EQ(buf[2063], 0x11);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		memcpy(bad, buf, SB_BYTES);
		put32le(bad + d[i].off, d[i].value);
		put32le(bad + 4092, crc32c(bad, 4092));
		err[0] = '\0';
		if (sb_decode(bad, SB_BYTES, &out, err, sizeof(err)) != -EBADMSG ||
		    strstr(err, d[i].reason) == NULL) {
			fprintf(stderr, "damage '%s' gave '%s'\n", d[i].what, err);
			CHECK(!"damage not rejected with the right reason");
		}
	}
	/* A log array over zoned members (policy and zone size both set). */
	memcpy(bad, buf, SB_BYTES);
	put32le(bad + 144, SB_POLICY_LOG);
	put32le(bad + 240, 4096);
	put32le(bad + 4092, crc32c(bad, 4092));
	CHECK_EQ(sb_decode(bad, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "draid log array over zoned members") != NULL);
	/* The distributed spares' table at 2064, 16 bytes each: state, slot, done. Slot 1 of
	 * the sample failed: spare 0 holds it, filling; spare 1 is free. */
	sb = sample(URAID_DRAID, 12, 4, 2);
	sb.draid_ds[0].state = DS_FILLING;
	sb.draid_ds[0].slot = 1;
	sb.draid_ds[0].done = 37;
	sb_encode(&sb, buf);
	CHECK_EQ(buf[2064], DS_FILLING);
	CHECK_EQ(buf[2068], 1);
	CHECK_EQ(buf[2072], 37);
	CHECK_EQ(sb_decode(buf, SB_BYTES, &out, err, sizeof(err)), 0);
	CHECK_EQ(out.draid_ds[0].state, DS_FILLING);
	CHECK_EQ(out.draid_ds[0].done, 37);
	{
		static const struct damage dd[] = {
			{"a free spare naming a slot", 2080 + 4, 3, "free distributed spare"},
			{"unknown state", 2064, 9, "state out of range"},
			{"slot beyond the members", 2068, 12, "slot out of range"},
			{"two spares, one slot", 2080, DS_FULL, "slot out of range"},
			{"done beyond the stripes", 2072, 5000, "beyond the array"},
			{"full for an active slot", 2068, 2, "disagree"},
			{"draining a failed slot", 2064, DS_DRAINING, "disagree"},
			{"a spare past draid_spares", 2064 + 16 * 6, DS_FULL, "state out of range"},
		};

		for (size_t i = 0; i < ARRAY_SIZE(dd); i++) {
			memcpy(bad, buf, SB_BYTES);
			put32le(bad + dd[i].off, dd[i].value);
			if (dd[i].off == 2080) /* spare 1 names slot 1 too */
				put32le(bad + 2084, 1);
			put32le(bad + 4092, crc32c(bad, 4092));
			err[0] = '\0';
			if (sb_decode(bad, SB_BYTES, &out, err, sizeof(err)) != -EBADMSG ||
			    strstr(err, dd[i].reason) == NULL) {
				fprintf(stderr, "damage '%s' gave '%s'\n", dd[i].what, err);
				CHECK(!"damage not rejected with the right reason");
			}
		}
	}
	/* Another level carrying draid fields. */
	sb = sample(URAID_RAID6, 6, 4, 2);
	sb_encode(&sb, bad);
	put32le(bad + 2052, 32);
	put32le(bad + 4092, crc32c(bad, 4092));
	CHECK_EQ(sb_decode(bad, SB_BYTES, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "draid fields on another level") != NULL);
}

TEST_MAIN(TEST(test_round_trip), TEST(test_draid_fields), TEST(test_journal_device_fields),
	  TEST(test_format_positions), TEST(test_rejects_damage), TEST(test_policy_fields))
