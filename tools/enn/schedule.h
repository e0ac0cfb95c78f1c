/* The protocol's two callbacks, as Keras defines them, on the monitored loss of each
 * epoch (validation loss, or training loss when nothing is held out):
 *   early stopping: stop after `patience` epochs without a lower loss (min_delta 0);
 *   reduce-on-plateau: after `patience` epochs without a loss lower than the best by
 *   more than 1e-4, multiply the learning rate by `factor` (not below min_lr).
 * Pure host logic, unit-tested in tests/test_train_metrics.c. */
#ifndef ENN_TOOLS_SCHEDULE_H
#define ENN_TOOLS_SCHEDULE_H

#include <stdint.h>

typedef struct early_stopping {
    uint32_t patience;
    double best;          /* +inf before the first epoch */
    uint32_t best_epoch;  /* 0: none yet */
    uint32_t wait;
} early_stopping;

void early_stopping_init(early_stopping *e, uint32_t patience);
/* After epoch `epoch` (1-based). Returns 1 when this epoch is the best so far (save its
 * weights); sets *stop when training should end. */
int early_stopping_update(early_stopping *e, uint32_t epoch, double loss, int *stop);

typedef struct plateau {
    uint32_t patience;
    float factor, min_lr;
    double best;
    uint32_t wait;
} plateau;

#define PLATEAU_MIN_DELTA 1e-4 /* Keras ReduceLROnPlateau's default */

void plateau_init(plateau *p, uint32_t patience, float factor, float min_lr);
/* Returns the learning rate for the next epoch (lr itself when unchanged). */
float plateau_update(plateau *p, double loss, float lr);

/* A learning rate per update instead of reduce-on-plateau: `warmup` updates rising
 * linearly to base (update s gets base (s + 1) / warmup), then from base down to min_lr
 * at update `total` along half a cosine or a line. Past total: min_lr. */
typedef enum lr_shape { LR_CONSTANT = 0, LR_COSINE = 1, LR_LINEAR = 2 } lr_shape;
typedef struct lr_schedule {
    lr_shape shape;
    float base, min_lr;
    uint64_t warmup, total;
} lr_schedule;

/* The rate of update `step` (0-based: the model's update count before it). */
float lr_schedule_at(const lr_schedule *s, uint64_t step);

#endif
