#include "slot.h"

#include <string.h>

/* One table entry per byte value: the CRC of that byte shifted into the top. */
static uint16_t table[256];
static int table_ready;

static void
table_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint16_t crc = (uint16_t)(b << 8);

		for (int i = 0; i < 8; i++)
			crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
		table[b] = crc;
	}
	table_ready = 1;
}

uint16_t
slot_crc16(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint16_t crc = 0;

	if (!table_ready)
		table_init();
	for (size_t i = 0; i < len; i++)
		crc = (uint16_t)((crc << 8) ^ table[((crc >> 8) ^ p[i]) & 0xff]);
	return crc;
}

size_t
slot_hashed_part(const char *key, size_t len, const char **tag)
{
	const char *open = memchr(key, '{', len), *close;

	*tag = key;
	if (open == NULL)
		return len;
	close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
	if (close == NULL || close == open + 1)
		return len;
	*tag = open + 1;
	return (size_t)(close - open - 1);
}

unsigned
slot_of(const char *key, size_t len)
{
	const char *part;
	size_t n = slot_hashed_part(key, len, &part);

	return slot_crc16(part, n) & (SLOT_COUNT - 1);
}
