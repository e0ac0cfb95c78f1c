/* The trace monitor of `enn train` (the reference package's HebbianTraceMonitor, with
 * more to look at): once per epoch it evaluates the model on a fixed sample batch, logs
 * the statistics of the final trace H_T, keeps their history, and rewrites these PNGs
 * (PLOT_WIDTH x PLOT_HEIGHT each) in its directory:
 *
 *   trace_heatmap.png     H_T after the latest epoch, memory slot x hidden unit
 *   trace_initial.png     H_T of the same batch before training (or after the first epoch)
 *   trace_difference.png  latest minus initial, diverging colour map around zero
 *   trace_stats.png       mean |H|, std, max, min and sparsity over the epochs
 *   attention.png         attention a over memory slots (rows) at each time step, sample 0
 *   training_curves.png   loss and accuracy, train and validation, over the epochs
 *
 * and trace_stats.csv with the numbers behind trace_stats.png and training_curves.png.
 * With a per-sample trace ([B,N,h]) the pictures show sample 0's. Evaluation starts from
 * H_0 = 0 with no noise, so the pictures are what one batch writes into an empty trace
 * (a stateful model instead starts from, and carries on, its state, as with any
 * enn_model_evaluate). */
#ifndef ENN_TOOLS_TRACE_MONITOR_H
#define ENN_TOOLS_TRACE_MONITOR_H

#include <stdint.h>
#include <stdio.h>

#include "enn.h"
#include "trace_stats.h"

/* The most samples the monitor evaluates (the first ones of the batch it is given). */
#define TRACE_MONITOR_MAX_SAMPLES 64

typedef struct trace_monitor trace_monitor;

/* An epoch's training numbers; NaN for any not measured (accuracy of a regressor, a run
 * without a validation set). */
typedef struct trace_epoch_metrics {
    float train_loss, train_accuracy;
    float val_loss, val_accuracy;
} trace_epoch_metrics;

/* Writes into `dir` (created if missing). `log`: where the per-epoch statistics line
 * goes (NULL: nowhere). */
enn_status trace_monitor_create(const char *dir, FILE *log, trace_monitor **out);
/* Optional, before training: records the untrained model's trace on `sample` as the
 * initial trace. Without it the first epoch's trace is the initial one. */
enn_status trace_monitor_capture_initial(trace_monitor *mon, enn_model *model, const enn_batch *sample);
/* After an epoch: evaluates `sample` (its first min(size, 64, max_batch) samples; pass
 * the same batch every epoch), computes and logs the statistics, appends them and
 * `metrics` (may be NULL) to the history, and rewrites every picture. `stats` (may be
 * NULL) receives this epoch's statistics. This overwrites the model's last forward
 * pass (the out.* tensors). */
enn_status trace_monitor_epoch(trace_monitor *mon, uint32_t epoch, enn_model *model, const enn_batch *sample,
                               const trace_epoch_metrics *metrics, trace_stats *stats);
/* Epochs recorded so far. */
uint32_t trace_monitor_epochs(const trace_monitor *mon);
void trace_monitor_destroy(trace_monitor *mon);

#endif
