/* Internal accessors over the model's recorder (models/model_stats.h). */
#include "models/model_stats.h"

#include "core/error.h"
#include "models/model.h"

enn_status enn_model_last_step_stats(const enn_model *m, enn_model_step_stats *out)
{
    if (!m || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_last_step_stats: NULL argument");
    enn_recorder_stats s = enn_recorder_get_stats(m->rec);
    *out = (enn_model_step_stats){s.dispatches, s.transfers, s.barriers, s.submits, s.record_ms};
    return ENN_OK;
}

void enn_model_set_profiling(enn_model *m, int on)
{
    if (m) enn_recorder_set_timestamps(m->rec, on);
}

uint32_t enn_model_last_step_timings(const enn_model *m, const enn_timing **out)
{
    if (!m) {
        if (out) *out = NULL;
        return 0;
    }
    return enn_recorder_timings(m->rec, out);
}
