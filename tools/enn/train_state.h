/* Where a training run stands, saved with its last checkpoint (in <out>/last.safetensors'
 * metadata, and as <out>/last.json beside it), so that `enn train --resume` goes on exactly where the run
 * stopped: the epoch and batch, the epoch's running tallies, early stopping and
 * reduce-on-plateau, and what must not change between the two runs (data, batch, seed). */
#ifndef ENN_TOOLS_TRAIN_STATE_H
#define ENN_TOOLS_TRAIN_STATE_H

#include <stdint.h>

#include "metrics.h"
#include "schedule.h"

typedef struct train_state {
    uint32_t epoch;             /* the epoch to go on with (1-based) */
    uint64_t batches_done;      /* batches of it already trained */
    metric_sum train_sum;       /* that epoch's training tallies so far */
    early_stopping stopper;
    plateau lr_plateau;
    int have_best;              /* best.safetensors holds the best epoch's weights */
    uint32_t last_epoch;        /* the last epoch finished */
    int stopped_early;          /* early stopping ended the run */
    double seconds;             /* training time so far */
    uint64_t updates;           /* the checkpoint's update count: the pair belongs together */
    uint64_t *passes;           /* each process's forward passes (enn_model_pass_count), */
    uint32_t n_passes;          /* n_passes entries in rank order; 0: not recorded */
    /* The run's identity: a resumed run must match it. */
    char data[32];              /* data kind */
    uint64_t train_samples;     /* training samples after the validation split */
    uint32_t data_crc32;        /* CRC-32 of the training then the validation samples */
    int have_data_crc32;        /* 0 in files written before it was recorded */
    uint32_t batch, accumulate, processes;
    uint64_t seed;
    int lr_schedule;            /* lr_shape (schedule.h) */
    uint32_t warmup;
    char *config;               /* the model's configuration (enn_model_config_to_json) */
    uint64_t csv_bytes, jsonl_bytes; /* metrics.csv / metrics.jsonl sizes when written */
} train_state;

/* The state as JSON text (malloc'ed), or NULL after printing why. It is stored twice:
 * in last.safetensors' metadata ("enn.train_state", written with the weights in one
 * atomic save, which --resume reads) and as last.json beside it, for people and scripts. */
char *train_state_to_text(const train_state *s);
/* Writes a state's text (train_state_to_text) to `path` atomically (temporary file,
 * rename). Returns 0, or -1 after printing why. */
int train_state_save(const char *path, const char *text);
/* As train_state_load, from text; `origin` names it in messages. */
int train_state_parse(const char *text, const char *origin, train_state *s);
/* Returns 0, or -1 after printing why (missing, unreadable, not a state file). The
 * caller frees s->config and s->passes (train_state_free). */
int train_state_load(const char *path, train_state *s);
void train_state_free(train_state *s);
/* 0 when `now` (this run's identity fields and model configuration) matches `saved`;
 * else -1 after printing the first difference. */
int train_state_check(const train_state *saved, const train_state *now);

#endif
