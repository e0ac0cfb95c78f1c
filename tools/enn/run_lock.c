/* See run_lock.h. */
#include "run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Who holds the lock, as its holder wrote it ("pid 1234 on host"); "" when the file
 * says nothing (its holder is just starting, or could not write it). */
static void read_holder(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
}

/* Best effort: the flock is the lock, this text only names its holder to whoever is refused. */
static void record_holder(int fd)
{
    char host[256] = "", text[320];
    if (gethostname(host, sizeof host)) host[0] = 0;
    host[sizeof host - 1] = 0;
    int n = snprintf(text, sizeof text, "pid %ld on %s\n", (long)getpid(), host[0] ? host : "this host");
    if (ftruncate(fd, 0) || pwrite(fd, text, (size_t)n, 0) < 0) return;
}

int run_lock_take(run_lock *lock, const char *dir)
{
    lock->fd = -1;
    char path[1200];
    snprintf(path, sizeof path, "%s/" RUN_LOCK_NAME, dir);
    int writable = 1, fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EACCES) {
        /* Another user's lock file in a directory both write: it locks all the same. */
        writable = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        fprintf(stderr, "enn train: cannot open %s (which keeps a second enn train out of %s): %s\n", path, dir,
                strerror(errno));
        return -1;
    }
    int rc;
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (rc && errno == EWOULDBLOCK) {
        char holder[320];
        read_holder(fd, holder, sizeof holder);
        fprintf(stderr, "enn train: %s is being written by another enn train%s%s%s; wait for it to end or choose "
                        "another --out\n", dir, holder[0] ? " (" : "", holder, holder[0] ? ")" : "");
        close(fd);
        return -1;
    }
    if (rc) {
        fprintf(stderr, "enn train: warning: cannot lock %s (%s); nothing keeps another enn train from writing "
                        "into %s at the same time\n", path, strerror(errno), dir);
        close(fd);
        return 0;
    }
    if (writable) record_holder(fd);
    lock->fd = fd;
    return 0;
}

void run_lock_release(run_lock *lock)
{
    if (lock->fd < 0) return;
    /* The file stays: removing it could let two processes lock two different files. */
    if (ftruncate(lock->fd, 0)) {
        /* (read-only: it names an earlier holder, which only a refused process reads) */
    }
    close(lock->fd);
    lock->fd = -1;
}
