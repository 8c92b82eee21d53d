/*
 * slot: Redis Cluster's key-to-slot mapping. A key's slot is CRC16 (the
 * XMODEM variant: polynomial 0x1021, initial value 0) of the key, modulo
 * 16384. When the key holds a hash tag, a '{' followed later by a '}' with
 * at least one byte between them, only the bytes between the first '{'
 * and the first '}' after it are hashed; "{}" is no tag, and the key is
 * hashed whole. Binary-safe, pure, no allocation.
 */
#ifndef PR_SLOT_H
#define PR_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 16384

/* CRC16-XMODEM of buf[0..len). */
uint16_t slot_crc16(const void *buf, size_t len);

/*
 * The part of key[0..len) that is hashed: its hash tag, or all of it.
 * Sets *tag and returns the tag's length.
 */
size_t slot_hashed_part(const char *key, size_t len, const char **tag);

/* The slot of key[0..len), 0..16383. */
unsigned slot_of(const char *key, size_t len);

#endif
