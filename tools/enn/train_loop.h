/* The pieces of a training run shared by `enn train` and `enn eval`: batches gathered
 * from a data set, evaluation over a whole set, host copies of the weights (restoring
 * the best epoch's), and the trace monitor's statistics. */
#ifndef ENN_TOOLS_TRAIN_LOOP_H
#define ENN_TOOLS_TRAIN_LOOP_H

#include <signal.h>
#include <stdio.h>

#include "enn.h"
#include "enn_data.h"
#include "metrics.h"
#include "trace_stats.h"

/* Host buffers for one batch of up to `capacity` samples. */
typedef struct batch_buffers {
    uint32_t capacity;
    int token_as_float;  /* language model fed the token id as its one float feature */
    float *x, *y;
    uint32_t *labels, *tokens, *targets;
    float *logits;       /* classifier: [capacity, classes] for the confusion matrix */
    uint32_t classes;
} batch_buffers;

/* For data shaped like `ds` and a model `config`. Returns 0, or -1 (out of memory). */
int batch_buffers_init(batch_buffers *b, const enn_dataset *ds, const enn_model_config *config, uint32_t capacity);
void batch_buffers_free(batch_buffers *b);
/* Gathers samples order[first, first + count) (order NULL: in order) into the buffers
 * and describes them as an enn_batch. */
enn_status batch_gather(batch_buffers *b, const enn_dataset *ds, const size_t *order, size_t first, uint32_t count,
                        enn_batch *out);

/* Loss and accuracy over the whole data set (deterministic evaluation), and, when
 * `matrix` is not NULL (classifier), the confusion matrix. `label` not NULL: progress
 * lines on stderr ("test", ...); `plain` as in progress_begin. `stop` (may be NULL) is
 * polled between batches: evaluation ends early when it becomes non-zero. `predictions`
 * (may be NULL): a CSV header, then one row per sample: a classifier's index, label,
 * predicted class (the arg max, lowest index on ties) and class probabilities (softmax
 * of the logits); a regressor's index (and step, with return_sequences), targets and
 * outputs. Not for a language model. */
enn_status evaluate_dataset(enn_model *model, const enn_dataset *ds, batch_buffers *buffers, metric_sum *sum,
                            confusion *matrix, const char *label, int plain, volatile sig_atomic_t *stop,
                            FILE *predictions);

/* Host copies of every parameter tensor. */
typedef struct weights {
    uint32_t count;
    float **data;
    size_t *sizes;
    char (*names)[64];
} weights;
enn_status weights_take(enn_model *model, weights *w);  /* allocates on first use, then overwrites */
enn_status weights_restore(enn_model *model, const weights *w);
void weights_free(weights *w);

/* The trace monitor: evaluates the first min(64, n) samples and returns the statistics
 * of the final trace H_T (ENN models only; ENN_ERROR_UNSUPPORTED for baselines). */
enn_status trace_sample_stats(enn_model *model, const enn_dataset *ds, batch_buffers *buffers, trace_stats *out);

#endif
