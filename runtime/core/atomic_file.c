#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Makes the rename itself durable: without an fsync of the directory, a crash right
 * after it can leave the old name pointing at the old file (or at nothing). */
static void sync_directory(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static void release_lock(enn_atomic_file *af)
{
    if (af->lock_fd >= 0) close(af->lock_fd);
    af->lock_fd = -1;
}

enn_status enn_atomic_open(enn_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    af->lock_fd = -1;
    if (!path || !path[0]) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "output file path is empty");
    size_t n = strlen(path);
    af->tmp_path = malloc(n + 8);
    if (!af->tmp_path) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", path);
    memcpy(af->tmp_path, path, n);
    int fd = -1;
    /* The temporary is locked until it is renamed or removed, so that a tool cleaning up
     * what killed writers left (enn train's start) tells a live one from a dead one: the
     * lock ends with the process. A cleaner that took the name first has removed it: make
     * another. Where the file system has no locks, nothing is locked, as before. */
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        memcpy(af->tmp_path + n, ".XXXXXX", 8);
        fd = mkstemp(af->tmp_path);
        if (fd < 0) break;
        struct stat held, named;
        int locked = flock(fd, LOCK_EX) == 0;
        if (fstat(fd, &held) == 0 && stat(af->tmp_path, &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev) {
            /* The lock belongs to the open file: a second descriptor keeps it past fclose. */
            af->lock_fd = locked ? dup(fd) : -1;
            break;
        }
        close(fd);
        fd = -1;
        errno = EEXIST;
    }
    if (fd < 0) {
        int e = errno;
        free(af->tmp_path);
        af->tmp_path = NULL;
        return enn_error(e == ENOMEM ? ENN_ERROR_OUT_OF_HOST_MEMORY : ENN_ERROR_IO,
                         "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; data files are ordinary files */
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        release_lock(af);
        free(af->tmp_path);
        af->tmp_path = NULL;
        /* fdopen allocates the FILE: ENOMEM is the host's memory, not the disk. */
        return enn_error(e == ENOMEM ? ENN_ERROR_OUT_OF_HOST_MEMORY : ENN_ERROR_IO, "%s: cannot open for writing: %s",
                         path, strerror(e));
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
    release_lock(af);
    memset(af, 0, sizeof *af);
    af->lock_fd = -1;
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
    release_lock(af);
    if (status == ENN_OK) sync_directory(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    af->lock_fd = -1;
    return status;
}
