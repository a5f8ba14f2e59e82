/*
 * fz.h: the pieces shared by the fuzz harnesses of verify/fuzz/: a reader
 * that decodes an operation sequence from the fuzzer's bytes, and the
 * check that stops at the first disagreement with the reference model.
 *
 * The reader never fails: past the end of the input it returns zeroes and
 * fz_more() turns false, so every prefix of an input is an input, and
 * libFuzzer's mutations (insert, erase, flip) keep the ops in step.
 *
 * FZ_REQUIRE prints what disagreed and the operation number, then
 * abort()s: libFuzzer saves the input as a crash artifact, and the replay
 * driver (fuzz_main.c) or `FUZZER crash-FILE` reproduces it.
 */
#ifndef LF_FUZZ_FZ_H
#define LF_FUZZ_FZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The entry point libFuzzer calls (and fuzz_main.c, without libFuzzer). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	const uint8_t *p;
	size_t n, at;
	unsigned long op; /* operations decoded so far, for messages */
};

static inline void fz_init(struct fz *f, const uint8_t *data, size_t size)
{
	*f = (struct fz){ .p = data, .n = size };
}

static inline bool fz_more(const struct fz *f)
{
	return f->at < f->n;
}

static inline uint8_t fz_u8(struct fz *f)
{
	return f->at < f->n ? f->p[f->at++] : 0;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint16_t lo = fz_u8(f);
	return (uint16_t)(lo | (uint16_t)fz_u8(f) << 8);
}

static inline uint32_t fz_u32(struct fz *f)
{
	uint32_t lo = fz_u16(f);
	return lo | (uint32_t)fz_u16(f) << 16;
}

static inline uint64_t fz_u64(struct fz *f)
{
	uint64_t lo = fz_u32(f);
	return lo | (uint64_t)fz_u32(f) << 32;
}

/* A value below n (n > 0) from one byte, or two when n > 256. */
static inline unsigned fz_below(struct fz *f, unsigned n)
{
	return (n > 256 ? fz_u16(f) : fz_u8(f)) % n;
}

#define FZ_REQUIRE(f, cond, ...)                                               \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FUZZ FAIL %s:%d: %s\n  ", __FILE__,   \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr,                                        \
				"\n  at operation %lu (input byte "            \
				"%zu of %zu)\n",                               \
				(f)->op, (f)->at, (f)->n);                     \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
