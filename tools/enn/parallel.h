/* A training step over a batch cut into shares, for `enn train`:
 *   - data parallel over MPI: every process trains its own copy of the model on its share
 *     of every batch, and the gradients are averaged (an all-reduce) before each update,
 *     so the copies stay identical (DESIGN.md: several GPUs and machines, launched by
 *     mpirun or Slurm);
 *   - gradient accumulation: a process's share as micro-batches in turn.
 * libenn itself knows nothing of MPI: the tool uses its gradient exchange
 * (enn_model_read_gradients / write_gradients / apply_gradients).
 *
 * MPI is started only when an MPI launcher started this process (its environment
 * variables); a plain `enn train` runs alone and never touches MPI. Built without MPI
 * (libopenmpi-dev missing at build time), a launch under mpirun is refused. */
#ifndef ENN_TOOLS_PARALLEL_H
#define ENN_TOOLS_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include <signal.h>

#include "enn.h"
#include "enn_data.h"
#include "metrics.h"

typedef struct parallel {
    int rank, size;        /* this process among `size`; 0 of 1 when alone */
    int local_rank;        /* among the processes on this machine (picks its GPU) */
    int started;           /* MPI_Init was called */
} parallel;

/* Alone unless an MPI launcher started this process. Returns 0, or -1 after printing why. */
int parallel_init(parallel *p);
/* Ends MPI; `failed`: ends every process of the job (a process that failed would
 * otherwise leave the others waiting in an all-reduce). */
void parallel_finish(parallel *p, int failed);

/* The device for this process when several share a machine and neither --device nor
 * ENN_DEVICE names one: its local rank's GPU among the machine's discrete GPUs (into
 * buf), or NULL for the default. */
const char *parallel_device(const parallel *p, char *buf, size_t size);

/* Makes every process's parameters rank 0's (the copies start from one initialisation
 * while each draws its own noise and dropout from its own seed). */
enn_status parallel_broadcast_parameters(const parallel *p, enn_model *model);

/* Fills micro-batch `part` of this process's share of the batch (out->size 0: empty). */
typedef enn_status (*parallel_part_fn)(void *user, uint32_t part, enn_batch *out);

/* One training step over this process's share of a batch, computed as `parts` micro-batches
 * in turn (gradient accumulation; 1: the share at once): every part's gradient weighted by
 * the samples it counted, summed over the parts and then over the processes (all-reduce),
 * divided by the total count, written back into the model, one update. So P processes of K
 * parts each train as one process on the whole batch would (for models whose samples do
 * not interact). *result becomes the whole batch's (loss, correct, counted); flags[0..nflags)
 * (at most 8) are OR-ed over the processes so that all of them stop together (interrupt,
 * time limit). `gradients` and, with parts > 1, `scratch` hold enn_model_gradient_count
 * floats each. */
enn_status parallel_train_step(const parallel *p, enn_model *model, uint32_t parts, parallel_part_fn part, void *user,
                               float *gradients, float *scratch, enn_step_result *result, int *flags, int nflags);

/* This process's contiguous part of a data set (a view into ds: not to be freed), for
 * evaluating a set in parts, one per process. */
enn_dataset parallel_dataset_part(const parallel *p, const enn_dataset *ds);
/* Sums the processes' evaluation tallies (and confusion matrices, when not NULL) into
 * every process's, and ORs *stopped (an interrupt during the evaluation). */
void parallel_sum_metrics(const parallel *p, metric_sum *sum, confusion *matrix, volatile sig_atomic_t *stopped);

/* Every process's v, in rank order, into all[0..size) on process 0 (all may be NULL
 * elsewhere); alone: all[0] = v. */
void parallel_gather_u64(const parallel *p, uint64_t v, uint64_t *all);

/* Rank 0's values of v[0..n) on every process. */
void parallel_broadcast(const parallel *p, double *v, int n);

#endif
