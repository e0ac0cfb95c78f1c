/* Reading whole files (plain or gzip alike) for the data loaders, and their byte-level
 * helpers; they write through core/atomic_file.h. Every failure names the file. */
#ifndef ENN_DATA_FILE_H
#define ENN_DATA_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "core/atomic_file.h" /* the loaders' writers */
#include "core/error.h"
#include "enn_data.h"

/* Reads the whole file, decompressing it if it is gzip (zlib's gzread passes other
 * files through unchanged). *data is malloc'ed (NULL when *size is 0); *gzip says
 * whether the file was compressed. A gzip stream that ends early or fails its check is
 * ENN_ERROR_FORMAT. */
enn_status enn_file_slurp(const char *path, uint8_t **data, size_t *size, int *gzip);

/* 3 when the text starts with a UTF-8 byte order mark (Windows editors write one), else
 * 0: the text loaders skip it rather than read it as part of the first word. */
static inline size_t enn_utf8_bom(const void *text, size_t size)
{
    const uint8_t *p = text;
    return size >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF ? 3 : 0;
}

static inline int enn_host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}
/* Reverses the bytes of each of `count` elements of `size` bytes, in place. */
void enn_byteswap(void *data, size_t count, size_t size);
static inline uint32_t enn_read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* splitmix64: the data loaders' one random source (shuffles, line selection). */
static inline uint64_t enn_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* a * b into *out, or 0 if it overflows size_t. */
static inline int enn_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

#endif
