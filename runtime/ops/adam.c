/* Launcher for shaders/adam.comp. */
#include "ops/adam.h"

#include <math.h>

#include "ops/launch.h"

#define LOCAL 256

typedef struct adam_push {
    uint32_t chunk_elems, tensor_count, total_chunks, clip_mode;
    float clipnorm, alpha, beta1, beta2, epsilon, decay;
    uint32_t chunk_base, elem_base; /* the window: first chunk, float its bindings start at */
} adam_push;

enn_adam_params enn_adam_params_keras(void)
{
    return (enn_adam_params){.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .epsilon = 1e-7f, .step = 1};
}

enn_adam_params enn_adam_params_from_config(const enn_optimizer_config *c, uint64_t step)
{
    return (enn_adam_params){.lr = c->learning_rate, .beta1 = c->beta1, .beta2 = c->beta2, .epsilon = c->epsilon,
                             .weight_decay = c->weight_decay, .step = step, .clip = c->clip,
                             .clipnorm = c->clip_norm};
}

enn_status enn_adam_update(enn_recorder *rec, const enn_param_table *t, const enn_adam_params *hp,
                           enn_view params, enn_view grads, enn_view m, enn_view v)
{
    const char *op = "adam_update";
    enn_context *ctx = enn_recorder_context(rec);
    if (!t || !hp) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: NULL table or parameters", op);
    if (hp->step == 0) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: step counts from 1", op);
    if (!(hp->beta1 >= 0 && hp->beta1 < 1) || !(hp->beta2 >= 0 && hp->beta2 < 1) || !(hp->epsilon >= 0) ||
        !(hp->lr >= 0) || !(hp->weight_decay >= 0))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: lr %g, beta1 %g, beta2 %g, epsilon %g, weight decay %g", op,
                         hp->lr, hp->beta1, hp->beta2, hp->epsilon, hp->weight_decay);
    if ((unsigned)hp->clip > ENN_CLIP_GLOBAL || (hp->clip != ENN_CLIP_NONE && !(hp->clipnorm > 0)))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: clip mode %d with clipnorm %g", op, hp->clip, hp->clipnorm);
    uint64_t bytes = t->extent * 4;
    ENN_TRY(enn_ops_check_view(op, "params", params, bytes));
    ENN_TRY(enn_ops_check_view(op, "grads", grads, bytes));
    ENN_TRY(enn_ops_check_view(op, "m", m, bytes));
    ENN_TRY(enn_ops_check_view(op, "v", v, bytes));

    if (hp->clip != ENN_CLIP_NONE) ENN_TRY(enn_param_table_sumsq(rec, t, grads, enn_view_of(t->sumsq), 0));

    /* Bias correction in double on the host (pow of beta for large t stays accurate). */
    double t_step = (double)hp->step;
    double alpha = hp->lr * sqrt(1.0 - pow(hp->beta2, t_step)) / (1.0 - pow(hp->beta1, t_step));
    uint32_t local = enn_ops_local_size(ctx, LOCAL, 0);
    const enn_pipeline *pipe;
    /* CPU devices: four floats per step, read as texels, where every tensor starts on a
     * vec4 (windows start on multiples of 64 floats and chunks are 4096 floats, so they
     * do too). */
    enn_view views[4] = {params, grads, m, v};
    int vec4 = ctx->caps.device_type == ENN_DEVICE_CPU && t->offsets_vec4 &&
               enn_ops_texel_views_fit(ctx, views, 4, t->extent / 4 + 1);
    if (vec4) {
        const VkFormat f[10] = {0, 0, 0, 0, 0, 0, VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_R32G32B32A32_SFLOAT,
                                VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_R32G32B32A32_SFLOAT};
        const uint32_t spec[1] = {local};
        enn_pipeline_desc d = {.shader = "adam_vec4", .num_buffers = 10, .push_size = sizeof(adam_push), .spec = spec,
                               .spec_count = 1, .texel_formats = f};
        ENN_TRY(enn_pipeline_get(ctx, &d, &pipe));
    } else
        ENN_TRY(enn_ops_pipeline_local(ctx, "adam", 6, sizeof(adam_push), local, 0, &pipe));
    /* One dispatch per window of chunks whose floats one binding covers (one in all
     * unless the buffers are larger than the device binds). */
    for (uint32_t c0 = 0; c0 < t->chunk_count;) {
        enn_param_window w;
        ENN_TRY(enn_param_table_window(ctx, t, c0, &w));
        adam_push push = {ENN_PARAM_CHUNK, t->tensor_count, w.chunk0 + w.chunks, (uint32_t)hp->clip, hp->clipnorm,
                          (float)alpha, hp->beta1, hp->beta2, hp->epsilon, hp->lr * hp->weight_decay,
                          w.chunk0, w.elem_base};
        uint64_t at = (uint64_t)w.elem_base * 4;
        enn_binding b[10] = {ENN_IN(t->table), ENN_IN(t->sumsq),
                            enn_bind(enn_view_at(params.buf, params.offset + at), w.bytes, ENN_ACCESS_READ_WRITE),
                            enn_bind(enn_view_at(grads.buf, grads.offset + at), w.bytes, ENN_ACCESS_READ),
                            enn_bind(enn_view_at(m.buf, m.offset + at), w.bytes, ENN_ACCESS_READ_WRITE),
                            enn_bind(enn_view_at(v.buf, v.offset + at), w.bytes, ENN_ACCESS_READ_WRITE)};
        for (int i = 0; i < 4; i++) b[6 + i] = (enn_binding){b[2 + i].buffer, b[2 + i].offset, w.bytes, ENN_ACCESS_READ};
        uint32_t gx, gy;
        ENN_TRY(enn_ops_grid_groups(ctx, w.chunks, op, &gx, &gy));
        ENN_TRY(enn_record_dispatch(rec, pipe, b, vec4 ? 10 : 6, &push, gx, gy, 1, op));
        c0 += w.chunks;
    }
    return ENN_OK;
}
