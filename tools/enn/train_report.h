/* What `enn train` prints and logs: the run's output directory and per-epoch logs
 * (metrics.csv, metrics.jsonl), the model line, and the test metrics. */
#ifndef ENN_TOOLS_TRAIN_REPORT_H
#define ENN_TOOLS_TRAIN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "enn.h"
#include "metrics.h"
#include "train_data.h"
#include "train_options.h"
#include "trace_stats.h"

/* One epoch's line of the logs; NaN for what was not measured. */
typedef struct epoch_record {
    uint32_t epoch;
    double train_loss, train_acc, val_loss, val_acc, lr, seconds;
    int have_trace;
    trace_stats trace;
} epoch_record;

/* mkdir -p. Returns 0, or -1 after printing the problem. */
int make_dirs(const char *path);
/* make_dirs, noting the outermost directory it made in first_made ("" when it made none). */
int make_dirs_noting(const char *path, char *first_made, size_t size);
/* Takes back what make_dirs_noting made for path, when path holds nothing but `leftover`
 * (removed with it): a run that ends before writing anything leaves no trace. */
void remove_made_dirs(const char *path, const char *first_made, const char *leftover);
/* Removes what an interrupted save left in a run's directory (and its plots/): temporary
 * files of the checkpoints, the state, the vocabulary and the pictures, which only a
 * killed process leaves behind. */
void remove_stale_temporaries(const char *dir);
/* Opens dir/name, emptied unless `append` (a resumed run's log grows on, cut back first
 * to `cut_to` bytes when it is longer and cut_to > 0), writing `header` first when the
 * file is new or empty; NULL after printing the problem. */
FILE *open_log(const char *dir, const char *name, const char *header, int append, uint64_t cut_to);
/* Appends the epoch to the CSV and JSON-lines logs (either may be NULL) and flushes them;
 * -1 after printing the problem when a write failed. */
int log_epoch(FILE *csv, FILE *json, const epoch_record *r);
/* "model: ..." with the parameter count. */
void print_model(const enn_model_config *c, const train_data *d);
void print_test(const train_options *o, const train_data *d, const metric_sum *sum, const confusion *matrix);

#endif
