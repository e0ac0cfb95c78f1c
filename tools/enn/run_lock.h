/* One `enn train` at a time in a run directory: the process that writes the run holds
 * an exclusive flock on <dir>/.enn-train.lock from before it reads or changes anything
 * there until it ends. A second one is refused, naming the holder that the file records
 * (its pid and host). The kernel drops the lock when its holder dies (killed, crashed),
 * so the file a killed run leaves blocks nothing; it stays, and is not a run.
 * Where the filesystem cannot lock (NFS without its lock service, some FUSE and SMB
 * mounts), the run goes on after a warning: unguarded rather than impossible. */
#ifndef ENN_TOOLS_RUN_LOCK_H
#define ENN_TOOLS_RUN_LOCK_H

#define RUN_LOCK_NAME ".enn-train.lock"

typedef struct run_lock {
    int fd;   /* -1: not held */
} run_lock;

#define RUN_LOCK_NONE {-1}

/* Takes dir's lock for this process (dir must exist). Returns 0 when held, or when the
 * filesystem cannot lock (warned); -1 after printing why not: another process holds it,
 * or the lock file cannot be opened. */
int run_lock_take(run_lock *lock, const char *dir);
/* Lets the lock go (the file stays, emptied of this process's name); a no-op when not held. */
void run_lock_release(run_lock *lock);

#endif
