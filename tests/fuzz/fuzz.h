/*
 * What the harnesses share: arbitrary bytes through hiredis's reader, as
 * rconn reads a socket, each complete reply handed to the code under test;
 * and a check that fails the run the way a sanitizer does.
 */
#ifndef PR_TEST_FUZZ_H
#define PR_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

/* A broken promise of the code under test: report it and crash (a finding). */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/*
 * hiredis 0.14 allocates an array's element slots when it reads the
 * header, before the elements come: "*2000000000\r\n" asks for 16 GB. That
 * is the library's limit, not ours to find, so longer arrays are refused
 * (the reader fails as out of memory). No input the fuzzer writes (4 KB by
 * default) could complete an array that long: each element takes 4 bytes.
 */
#define FUZZ_ARRAY_MAX 65536

/* libFuzzer's entry points. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef void fuzz_reply_fn(const redisReply *rep, void *arg);

static void *(*fuzz_array_real)(const redisReadTask *, int);

static inline void *
fuzz_array(const redisReadTask *task, int elements)
{
	if (elements > FUZZ_ARRAY_MAX)
		return NULL;
	return fuzz_array_real(task, elements);
}

/* Feed data[0..size) to a reader and pass each complete reply to fn. */
static inline void
fuzz_replies(const uint8_t *data, size_t size, fuzz_reply_fn *fn, void *arg)
{
	static redisReplyObjectFunctions fns;
	redisReader *rd = redisReaderCreate();
	void *rep;

	if (rd == NULL)
		abort();
	if (fuzz_array_real == NULL) {
		fns = *rd->fn;
		fuzz_array_real = fns.createArray;
		fns.createArray = fuzz_array;
	}
	rd->fn = &fns;
	if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK)
		while (redisReaderGetReply(rd, &rep) == REDIS_OK && rep != NULL) {
			fn(rep, arg);
			freeReplyObject(rep);
		}
	redisReaderFree(rd);
}

#endif
