#include "data/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enn_status enn_file_slurp(const char *path, uint8_t **data, size_t *size, int *gzip)
{
    *data = NULL;
    *size = 0;
    if (gzip) *gzip = 0;
    if (!path) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "file path is NULL");
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        int e = errno;
        return enn_error(ENN_ERROR_IO, "%s: cannot open: %s", path, e ? strerror(e) : "out of memory");
    }
    size_t cap = 0, len = 0;
    uint8_t *buf = NULL;
    enn_status status = ENN_OK;
    for (;;) {
        if (len == cap) {
            /* Grow with what the file actually holds, never with what a header claims:
             * a lying header cannot make us allocate gigabytes. */
            size_t next = cap ? cap * 2 : (size_t)1 << 16;
            if (next < cap) { status = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: file too large", path); break; }
            uint8_t *grown = realloc(buf, next);
            if (!grown) {
                status = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory reading %zu bytes", path, next);
                break;
            }
            buf = grown;
            cap = next;
        }
        size_t want = cap - len;
        if (want > (1u << 30)) want = 1u << 30; /* gzread takes an unsigned int */
        int got = gzread(gz, buf + len, (unsigned)want);
        if (got > 0) {
            len += (size_t)got;
            continue;
        }
        int errnum = Z_OK;
        const char *msg = gzerror(gz, &errnum);
        if (errnum == Z_OK && got == 0) break; /* end of file */
        if (errnum == Z_ERRNO)
            status = enn_error(ENN_ERROR_IO, "%s: read failed: %s", path, strerror(errno));
        else if (errnum == Z_BUF_ERROR)
            status = enn_error(ENN_ERROR_FORMAT,
                               "%s: truncated gzip stream: the compressed file ends early "
                               "(after %zu uncompressed bytes)", path, len);
        else if (errnum == Z_MEM_ERROR)
            status = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory in zlib", path);
        else
            status = enn_error(ENN_ERROR_FORMAT, "%s: corrupt gzip data: %s (after %zu uncompressed bytes)",
                               path, msg ? msg : "unknown zlib error", len);
        break;
    }
    int direct = gzdirect(gz);
    gzclose(gz);
    if (status != ENN_OK) {
        free(buf);
        return status;
    }
    if (len == 0) {
        free(buf);
        buf = NULL;
    }
    *data = buf;
    *size = len;
    if (gzip) *gzip = !direct;
    return ENN_OK;
}

void enn_byteswap(void *data, size_t count, size_t size)
{
    uint8_t *p = data;
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}
