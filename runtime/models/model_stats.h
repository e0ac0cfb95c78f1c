/* Internal: what one training step costs, for `enn bench train`. Not public API: the
 * counts name the runtime's own machinery (dispatches, submissions, fence waits). */
#ifndef ENN_MODELS_MODEL_STATS_H
#define ENN_MODELS_MODEL_STATS_H

#include "core/recorder.h"
#include "enn.h"

typedef struct enn_model_step_stats {
    uint32_t dispatches;  /* compute dispatches in the last step's recording */
    uint32_t transfers;   /* fills and copies recorded in it */
    uint32_t barriers;    /* dependency barriers the recorder inserted */
    uint32_t submits;     /* queue submissions it was split into */
    double record_ms;     /* host time to record and submit it (the device idles meanwhile) */
} enn_model_step_stats;

/* Counts of the model's last recorded pass (training step, evaluation or gradients). */
enn_status enn_model_last_step_stats(const enn_model *model, enn_model_step_stats *out);
/* Timestamp queries around every dispatch of the following passes (when the device has
 * them); then enn_model_last_step_timings gives GPU time per dispatch name. */
void enn_model_set_profiling(enn_model *model, int on);
uint32_t enn_model_last_step_timings(const enn_model *model, const enn_timing **out);

#endif
