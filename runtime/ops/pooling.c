#include "ops/pooling.h"

#include "core/context.h"
#include "core/error.h"
#include "ops/launch.h"

#define POOL_WG 64
#define POOL_SAMPLES_LOCAL 8

typedef struct pool_push {
    uint32_t T, B, H, pass_id, accumulate_dhs;
} pool_push;

/* The kernel for this device and the grid of its per-sample passes (forward, backward).
 * CPU devices: a _samples variant, one invocation per sample (POOL_SAMPLES_LOCAL per
 * workgroup), no shared memory, four floats at a time when h allows. Elsewhere one
 * workgroup of POOL_WG per sample, whose shared memory holds the T scores, rounded up to
 * a power of two so that few pipeline variants exist. *local is the workgroup size (the
 * reduce pass's grid is counted in it). */
static enn_status pooling_pipeline(enn_recorder *rec, uint32_t T, uint32_t B, uint32_t h, const enn_pipeline **out,
                                   uint32_t *local, uint32_t *gx, uint32_t *gy)
{
    enn_context *ctx = enn_recorder_context(rec);
    if (ctx->caps.device_type == ENN_DEVICE_CPU) {
        const char *shader = h % 4 == 0 ? "attention_pooling_samples4" : "attention_pooling_samples";
        *local = enn_ops_local_size(ctx, POOL_SAMPLES_LOCAL, 0);
        ENN_TRY(enn_ops_pipeline_local(ctx, shader, 8, sizeof(pool_push), *local, 0, out));
        return enn_ops_grid_groups(ctx, ((uint64_t)B + *local - 1) / *local, "attention pooling", gx, gy);
    }
    uint32_t max_t = 64;
    while (max_t < T) max_t *= 2;
    if ((max_t + POOL_WG) * 4 > ctx->caps.max_shared_memory)
        return enn_error(ENN_ERROR_UNSUPPORTED, "attention pooling over T=%u steps needs %u bytes of shared memory; "
                         "the device has %u", T, (max_t + POOL_WG) * 4, ctx->caps.max_shared_memory);
    if (B > ctx->caps.max_workgroup_count[0])
        return enn_error(ENN_ERROR_UNSUPPORTED, "attention pooling: B=%u samples is more workgroups than the device's %u",
                         B, ctx->caps.max_workgroup_count[0]);
    *local = POOL_WG;
    *gx = B;
    *gy = 1;
    const uint32_t spec[2] = {POOL_WG, max_t};
    return enn_ops_pipeline(rec, "attention_pooling", 8, sizeof(pool_push), spec, 2, out);
}

static enn_status check_dims(const char *fn, uint32_t T, uint32_t B, uint32_t h)
{
    if (!T || !B || !h) return enn_error(ENN_ERROR_SHAPE, "%s: T=%u, B=%u, h=%u must all be positive", fn, T, B, h);
    return ENN_OK;
}

enn_status enn_attention_pooling_forward(enn_recorder *rec, uint32_t T, uint32_t B, uint32_t h, enn_view hs,
                                         enn_view w, enn_view s, enn_view p, enn_view ctx_out)
{
    ENN_TRY(check_dims("enn_attention_pooling_forward", T, B, h));
    const enn_pipeline *pipe;
    uint32_t local, gx, gy;
    ENN_TRY(pooling_pipeline(rec, T, B, h, &pipe, &local, &gx, &gy));
    VkDeviceSize thb = (VkDeviceSize)T * B * h * 4, tb = (VkDeviceSize)T * B * 4, bh = (VkDeviceSize)B * h * 4;
    /* Bindings 5-7 are unused by the forward pass; bind small read-only ranges. */
    enn_binding b[8] = {
        enn_bind(hs, thb, ENN_ACCESS_READ), enn_bind(w, (h + 1) * 4, ENN_ACCESS_READ),
        enn_bind(s, tb, ENN_ACCESS_WRITE),  enn_bind(p, tb, ENN_ACCESS_WRITE),
        enn_bind(ctx_out, bh, ENN_ACCESS_WRITE), enn_bind(hs, 4, ENN_ACCESS_READ),
        enn_bind(hs, 4, ENN_ACCESS_READ),    enn_bind(w, 4, ENN_ACCESS_READ),
    };
    pool_push push = {T, B, h, 0, 0};
    return enn_record_dispatch(rec, pipe, b, 8, &push, gx, gy, 1, "attention_pooling_forward");
}

enn_status enn_attention_pooling_backward(enn_recorder *rec, uint32_t T, uint32_t B, uint32_t h, enn_view hs,
                                          enn_view w, enn_view s, enn_view p, enn_view dctx, enn_view dhs,
                                          int accumulate_dhs, enn_view partial, enn_view dw)
{
    ENN_TRY(check_dims("enn_attention_pooling_backward", T, B, h));
    const enn_pipeline *pipe;
    uint32_t local, gx, gy;
    ENN_TRY(pooling_pipeline(rec, T, B, h, &pipe, &local, &gx, &gy));
    VkDeviceSize thb = (VkDeviceSize)T * B * h * 4, tb = (VkDeviceSize)T * B * 4, bh = (VkDeviceSize)B * h * 4;
    VkDeviceSize part = (VkDeviceSize)B * (h + 1) * 4;
    enn_binding b[8] = {
        enn_bind(hs, thb, ENN_ACCESS_READ),  enn_bind(w, (h + 1) * 4, ENN_ACCESS_READ),
        enn_bind(s, tb, ENN_ACCESS_READ),    enn_bind(p, tb, ENN_ACCESS_READ),
        enn_bind(dctx, bh, ENN_ACCESS_READ), enn_bind(dhs, thb, accumulate_dhs ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE),
        enn_bind(partial, part, ENN_ACCESS_WRITE), enn_bind(dw, 4, ENN_ACCESS_READ),
    };
    pool_push push = {T, B, h, 1, accumulate_dhs ? 1u : 0u};
    ENN_TRY(enn_record_dispatch(rec, pipe, b, 8, &push, gx, gy, 1, "attention_pooling_backward"));
    enn_binding r[8] = {
        enn_bind(hs, 4, ENN_ACCESS_READ), enn_bind(w, 4, ENN_ACCESS_READ),
        enn_bind(s, 4, ENN_ACCESS_READ),  enn_bind(p, 4, ENN_ACCESS_READ),
        enn_bind(dctx, 4, ENN_ACCESS_READ), enn_bind(hs, 4, ENN_ACCESS_READ),
        enn_bind(partial, part, ENN_ACCESS_READ), enn_bind(dw, (h + 1) * 4, ENN_ACCESS_READ_WRITE),
    };
    push.pass_id = 2;
    return enn_record_dispatch(rec, pipe, r, 8, &push, (h + local) / local, 1, 1,
                               "attention_pooling_reduce");
}

enn_status enn_mse_loss(enn_recorder *rec, uint32_t n, float scale, enn_view pred, enn_view target, enn_view dpred,
                        enn_view loss)
{
    if (!n) return enn_error(ENN_ERROR_SHAPE, "enn_mse_loss: no elements");
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t spec[1] = {256};
    enn_pipeline_desc d = {.shader = "mse_loss", .num_buffers = 4, .push_size = 8, .spec = spec, .spec_count = 1};
    const enn_pipeline *pipe;
    ENN_TRY(enn_pipeline_get(ctx, &d, &pipe));
    VkDeviceSize bytes = (VkDeviceSize)n * 4;
    enn_binding b[4] = {enn_bind(pred, bytes, ENN_ACCESS_READ), enn_bind(target, bytes, ENN_ACCESS_READ),
                        enn_bind(dpred, bytes, ENN_ACCESS_WRITE), enn_bind(loss, 4, ENN_ACCESS_WRITE)};
    struct { uint32_t n; float scale; } push = {n, scale};
    return enn_record_dispatch(rec, pipe, b, 4, &push, 1, 1, 1, "mse_loss");
}
