/* Launchers for shaders/softmax_cross_entropy.comp. Logits are bound a chunk of rows at
 * a time so that no binding passes maxStorageBufferRange. */
#include "ops/softmax_cross_entropy.h"

#include "ops/launch.h"

#define LOCAL 256

typedef struct rows_push {
    uint32_t rows, classes, ignore_index, row0, elem_offset;
} rows_push;

typedef struct stats_push {
    uint32_t rows, classes, ignore_index;
} stats_push;

typedef struct backward_push {
    uint32_t rows, classes, ignore_index, row0, elem_offset, out_offset;
    float scale;
} backward_push;

static enn_status check_shape(const char *op, const enn_context *ctx, const enn_xent_shape *s, uint32_t *chunk)
{
    if (!s || !s->rows || !s->classes)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: empty shape (rows %u, classes %u)", op, s ? s->rows : 0,
                         s ? s->classes : 0);
    if (s->classes >= 0x7fffffffu) return enn_error(ENN_ERROR_SHAPE, "%s: %u classes", op, s->classes);
    uint32_t cap = ctx->caps.max_workgroup_count[1];
    if (s->max_rows_per_dispatch && s->max_rows_per_dispatch < cap) cap = s->max_rows_per_dispatch;
    *chunk = enn_ops_rows_per_binding(ctx, (uint64_t)s->classes * 4, cap);
    if (!*chunk)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: one row of %u classes is more than the device binds (%llu bytes)",
                         op, s->classes, (unsigned long long)ctx->caps.max_storage_buffer_range);
    if ((uint64_t)*chunk * s->classes > 0xffffffffu) *chunk = (uint32_t)(0xffffffffu / s->classes);
    return ENN_OK;
}

enn_status enn_softmax_cross_entropy_forward(enn_recorder *rec, const enn_xent_shape *shape, enn_view logits,
                                             enn_view labels, enn_view loss, enn_view lse, enn_view pred,
                                             enn_view stats)
{
    const char *op = "softmax_cross_entropy_forward";
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t chunk;
    ENN_TRY(check_shape(op, ctx, shape, &chunk));
    uint32_t R = shape->rows, V = shape->classes;
    uint64_t row_bytes = (uint64_t)V * 4;
    ENN_TRY(enn_ops_check_view(op, "logits", logits, R * row_bytes));
    ENN_TRY(enn_ops_check_view(op, "labels", labels, R * 4ull));
    ENN_TRY(enn_ops_check_view(op, "loss", loss, R * 4ull));
    ENN_TRY(enn_ops_check_view(op, "lse", lse, R * 4ull));
    ENN_TRY(enn_ops_check_view(op, "pred", pred, R * 4ull));
    ENN_TRY(enn_ops_check_view(op, "stats", stats, sizeof(enn_xent_stats)));

    /* (max, sum, argmax) per invocation in shared memory. */
    uint32_t local = enn_ops_local_size(ctx, LOCAL, 12);
    const enn_pipeline *rows_pipe, *stats_pipe;
    ENN_TRY(enn_ops_pipeline_local(ctx, "softmax_cross_entropy", 5, sizeof(rows_push), local, 0, &rows_pipe));
    for (uint32_t row0 = 0; row0 < R; row0 += chunk) {
        uint32_t rows = R - row0 < chunk ? R - row0 : chunk;
        rows_push push = {rows, V, shape->ignore_index, row0, 0};
        enn_binding b[5] = {enn_ops_bind_rows(logits, row_bytes, row0, rows, ENN_ACCESS_READ, &push.elem_offset),
                            enn_bind(labels, R * 4ull, ENN_ACCESS_READ), enn_bind(loss, R * 4ull, ENN_ACCESS_WRITE),
                            enn_bind(lse, R * 4ull, ENN_ACCESS_WRITE), enn_bind(pred, R * 4ull, ENN_ACCESS_WRITE)};
        uint32_t gx, gy;
        ENN_TRY(enn_ops_grid_groups(ctx, rows, op, &gx, &gy));
        ENN_TRY(enn_record_dispatch(rec, rows_pipe, b, 5, &push, gx, gy, 1, "softmax_xent_rows"));
    }

    /* One workgroup sums the rows: R is B*T, a few thousand. */
    uint32_t slocal = enn_ops_local_size(ctx, LOCAL, 16);
    ENN_TRY(enn_ops_pipeline_local(ctx, "softmax_cross_entropy_stats", 4, sizeof(stats_push), slocal, 0, &stats_pipe));
    stats_push sp = {R, V, shape->ignore_index};
    enn_binding sb[4] = {enn_bind(labels, R * 4ull, ENN_ACCESS_READ), enn_bind(loss, R * 4ull, ENN_ACCESS_READ),
                         enn_bind(pred, R * 4ull, ENN_ACCESS_READ),
                         enn_bind(stats, sizeof(enn_xent_stats), ENN_ACCESS_WRITE)};
    return enn_record_dispatch(rec, stats_pipe, sb, 4, &sp, 1, 1, 1, "softmax_xent_stats");
}

enn_status enn_softmax_cross_entropy_backward(enn_recorder *rec, const enn_xent_shape *shape, enn_view logits,
                                              enn_view labels, enn_view lse, enn_view stats, float scale,
                                              enn_view dlogits)
{
    const char *op = "softmax_cross_entropy_backward";
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t chunk;
    ENN_TRY(check_shape(op, ctx, shape, &chunk));
    uint32_t R = shape->rows, V = shape->classes;
    uint64_t row_bytes = (uint64_t)V * 4;
    int in_place = logits.buf == dlogits.buf && logits.offset == dlogits.offset;
    ENN_TRY(enn_ops_check_view(op, "logits", logits, R * row_bytes));
    ENN_TRY(enn_ops_check_view(op, "labels", labels, R * 4ull));
    ENN_TRY(enn_ops_check_view(op, "lse", lse, R * 4ull));
    ENN_TRY(enn_ops_check_view(op, "stats", stats, sizeof(enn_xent_stats)));
    ENN_TRY(enn_ops_check_view(op, "dlogits", dlogits, R * row_bytes));
    if (!in_place && logits.buf == dlogits.buf && logits.offset < dlogits.offset + R * row_bytes &&
        dlogits.offset < logits.offset + R * row_bytes)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: dlogits overlaps logits without being the same view", op);

    uint32_t local = enn_ops_local_size(ctx, LOCAL, 0);
    uint64_t per_group = (uint64_t)local * 4; /* PER_THREAD in the shader */
    uint64_t blocks = ((uint64_t)V + per_group - 1) / per_group;
    if (blocks > ctx->caps.max_workgroup_count[0])
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %u classes need %llu workgroups per row", op, V,
                         (unsigned long long)blocks);
    const enn_pipeline *pipe;
    ENN_TRY(enn_ops_pipeline_local(ctx, in_place ? "softmax_cross_entropy_backward_inplace" : "softmax_cross_entropy_backward",
                             in_place ? 4 : 5, sizeof(backward_push), local, 0, &pipe));
    for (uint32_t row0 = 0; row0 < R; row0 += chunk) {
        uint32_t rows = R - row0 < chunk ? R - row0 : chunk;
        backward_push push = {rows, V, shape->ignore_index, row0, 0, 0, scale};
        enn_binding b[5] = {
            enn_ops_bind_rows(logits, row_bytes, row0, rows, in_place ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_READ,
                              &push.elem_offset),
            enn_bind(labels, R * 4ull, ENN_ACCESS_READ), enn_bind(lse, R * 4ull, ENN_ACCESS_READ),
            enn_bind(stats, sizeof(enn_xent_stats), ENN_ACCESS_READ)};
        if (!in_place) b[4] = enn_ops_bind_rows(dlogits, row_bytes, row0, rows, ENN_ACCESS_WRITE, &push.out_offset);
        ENN_TRY(enn_record_dispatch(rec, pipe, b, in_place ? 4 : 5, &push, (uint32_t)blocks, rows, 1,
                                    "softmax_xent_backward"));
    }
    return ENN_OK;
}
