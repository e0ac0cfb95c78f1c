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

enn_status enn_atomic_open(enn_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    if (!path || !path[0]) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "output file path is empty");
    size_t n = strlen(path);
    af->tmp_path = malloc(n + 8);
    if (!af->tmp_path) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", path);
    memcpy(af->tmp_path, path, n);
    memcpy(af->tmp_path + n, ".XXXXXX", 8);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        int e = errno;
        free(af->tmp_path);
        af->tmp_path = NULL;
        return enn_error(ENN_ERROR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; data files are ordinary files */
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        free(af->tmp_path);
        af->tmp_path = NULL;
        return enn_error(ENN_ERROR_IO, "%s: cannot open for writing: %s", path, strerror(e));
    }
    af->path = path;
    return ENN_OK;
}

enn_status enn_atomic_write(enn_atomic_file *af, const void *bytes, size_t n)
{
    if (n && fwrite(bytes, 1, n, af->f) != n)
        return enn_error(ENN_ERROR_IO, "%s: write failed: %s", af->path, strerror(errno));
    return ENN_OK;
}

void enn_atomic_abort(enn_atomic_file *af)
{
    if (af->f) fclose(af->f);
    if (af->tmp_path) {
        unlink(af->tmp_path);
        free(af->tmp_path);
    }
    memset(af, 0, sizeof *af);
}

enn_status enn_atomic_commit(enn_atomic_file *af)
{
    enn_status status = ENN_OK;
    if (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)
        status = enn_error(ENN_ERROR_IO, "%s: write failed: %s", af->path, strerror(errno));
    int closed = fclose(af->f);
    af->f = NULL;
    if (status == ENN_OK && closed != 0)
        status = enn_error(ENN_ERROR_IO, "%s: write failed: %s", af->path, strerror(errno));
    if (status == ENN_OK && rename(af->tmp_path, af->path) != 0)
        status = enn_error(ENN_ERROR_IO, "%s: cannot rename %s over it: %s", af->path, af->tmp_path,
                           strerror(errno));
    if (status != ENN_OK) unlink(af->tmp_path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    return status;
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
