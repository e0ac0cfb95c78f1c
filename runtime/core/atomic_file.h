/* Files replaced whole or not at all: written under a unique temporary name next to the
 * target (mkstemp, so two writers, threads or processes, never share one) and renamed
 * over it on commit, after an fsync of the file and then of its directory. A reader sees
 * the old file or the new one, never a mix; a failure leaves the old one as it was.
 * The temporary is flock'ed until then, so a cleaner can leave a live writer's alone.
 * Checkpoints, the pipeline cache, .npy files and vocabularies are written this way. */
#ifndef ENN_CORE_ATOMIC_FILE_H
#define ENN_CORE_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef struct enn_atomic_file {
    FILE *f;
    char *tmp_path;
    const char *path;
    int lock_fd;   /* holds the temporary's lock past fclose, until rename; -1 if none */
} enn_atomic_file;

/* Creates the temporary file (mode 0644); `path` must outlive the enn_atomic_file. */
enn_status enn_atomic_open(enn_atomic_file *af, const char *path);
enn_status enn_atomic_write(enn_atomic_file *af, const void *bytes, size_t n);
/* Flushes, syncs, closes and renames, then syncs the directory; on failure removes the
 * temporary file. */
enn_status enn_atomic_commit(enn_atomic_file *af);
/* Closes and removes the temporary file (after a failure elsewhere). */
void enn_atomic_abort(enn_atomic_file *af);

#endif
