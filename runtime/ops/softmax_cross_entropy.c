/* Launchers for shaders/softmax_cross_entropy.comp. Logits are bound a chunk of rows at
 * a time so that no binding passes maxStorageBufferRange. */
#include "ops/softmax_cross_entropy.h"

#include "ops/launch.h"
#include "ops/reduce.h"

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
    uint32_t per_invocation;
} backward_push;

/* CPU kernels (see the shader): vec4s per invocation of the _runs kernel, invocations per
 * workgroup. On lavapipe a run of 64 vec4s halves the time of one vec4 per invocation. */
#define CPU_RUN_VEC4S 64
#define CPU_LOCAL 64

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

/* Whether the CPU kernels can run a chunk that starts at element elem_offset of its
 * logits binding and out_offset of its dlogits binding: RGBA32F texels, vec4-aligned
 * starts, and a texel view that fits. */
static int cpu_kernels_fit(const enn_context *ctx, uint32_t elem_offset, uint32_t out_offset, uint64_t elements)
{
    const enn_capabilities *c = &ctx->caps;
    return c->device_type == ENN_DEVICE_CPU && c->texel_buffer_f32 &&
           c->min_texel_buffer_offset_alignment <= ENN_VIEW_ALIGN && elem_offset % 4 == 0 && out_offset % 4 == 0 &&
           (elem_offset + elements + 3) / 4 <= c->max_texel_buffer_elements;
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

    /* (max, sum, argmax) per invocation in shared memory. CPU devices: two subgroups per
     * row (on lavapipe 16 invocations ran a V = 8192 row 3.5x faster than 256, whose
     * shared-memory tree and barriers cost more than the row). */
    uint32_t want = LOCAL;
    if (ctx->caps.device_type == ENN_DEVICE_CPU && ctx->caps.subgroup_size) want = 2 * ctx->caps.subgroup_size;
    uint32_t local = enn_ops_local_size(ctx, want, 12);
    const enn_pipeline *rows_pipe, *stats_pipe;
    ENN_TRY(enn_ops_pipeline_local(ctx, "softmax_cross_entropy", 5, sizeof(rows_push), local, 0, &rows_pipe));
    /* CPU devices with V % 4 == 0: one row per invocation, the logits read as vec4 texels
     * (no shared memory; on lavapipe LM logits of 2432 x 10000 took ~2.5x less time than
     * with two subgroups per row). Behind ENN_DISABLE_TEXEL_BUFFERS like the backward's. */
    const enn_pipeline *cpu_pipe = NULL;
    uint32_t cpu_local = enn_ops_local_size(ctx, CPU_LOCAL, 0);
    if (V % 4 == 0 && cpu_kernels_fit(ctx, 0, 0, 0)) {
        VkFormat texel_formats[5] = {VK_FORMAT_R32G32B32A32_SFLOAT};
        const uint32_t cpu_spec[1] = {cpu_local};
        enn_pipeline_desc pd = {.shader = "softmax_cross_entropy_rows_cpu", .num_buffers = 5,
                                .push_size = sizeof(rows_push), .spec = cpu_spec, .spec_count = 1,
                                .texel_formats = texel_formats};
        ENN_TRY(enn_pipeline_get(ctx, &pd, &cpu_pipe));
    }
    for (uint32_t row0 = 0; row0 < R; row0 += chunk) {
        uint32_t rows = R - row0 < chunk ? R - row0 : chunk;
        rows_push push = {rows, V, shape->ignore_index, row0, 0};
        enn_binding b[5] = {enn_ops_bind_rows(logits, row_bytes, row0, rows, ENN_ACCESS_READ, &push.elem_offset),
                            enn_bind(labels, R * 4ull, ENN_ACCESS_READ), enn_bind(loss, R * 4ull, ENN_ACCESS_WRITE),
                            enn_bind(lse, R * 4ull, ENN_ACCESS_WRITE), enn_bind(pred, R * 4ull, ENN_ACCESS_WRITE)};
        uint32_t gx, gy;
        if (cpu_pipe && cpu_kernels_fit(ctx, push.elem_offset, 0, (uint64_t)rows * V)) {
            ENN_TRY(enn_ops_grid_groups(ctx, (rows + cpu_local - 1) / cpu_local, op, &gx, &gy));
            ENN_TRY(enn_record_dispatch(rec, cpu_pipe, b, 5, &push, gx, gy, 1, "softmax_xent_rows"));
            continue;
        }
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
                                              enn_view dlogits, enn_view dbias)
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
    if (dbias.buf) ENN_TRY(enn_ops_check_view(op, "dbias", dbias, row_bytes));
    if (!in_place && logits.buf == dlogits.buf && logits.offset < dlogits.offset + R * row_bytes &&
        dlogits.offset < logits.offset + R * row_bytes)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: dlogits overlaps logits without being the same view", op);
    if (dbias.buf && ((dbias.buf == dlogits.buf && dbias.offset < dlogits.offset + R * row_bytes &&
                       dlogits.offset < dbias.offset + row_bytes) ||
                      (dbias.buf == logits.buf && dbias.offset < logits.offset + R * row_bytes &&
                       logits.offset < dbias.offset + row_bytes)))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: dbias overlaps logits or dlogits", op);

    uint32_t local = enn_ops_local_size(ctx, LOCAL, 0);
    uint64_t per_group = (uint64_t)local * 4; /* PER_THREAD in the shader */
    uint64_t blocks = ((uint64_t)V + per_group - 1) / per_group;
    if (blocks > ctx->caps.max_workgroup_count[0])
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %u classes need %llu workgroups per row", op, V,
                         (unsigned long long)blocks);
    const enn_pipeline *pipe;
    ENN_TRY(enn_ops_pipeline_local(ctx, in_place ? "softmax_cross_entropy_backward_inplace" : "softmax_cross_entropy_backward",
                             in_place ? 4 : 5, sizeof(backward_push), local, 0, &pipe));
    /* CPU devices: the column kernel adds the bias gradient on the way when rows are whole
     * vec4s (then every chunk starts on one: views are 256-byte aligned); otherwise the
     * run kernel, and the bias gradient is one more pass over dlogits. */
    uint32_t cpu_local = enn_ops_local_size(ctx, CPU_LOCAL, 0);
    /* logits as vec4 texels, labels and lse as texels of 4 rows */
    VkFormat texel_formats[6] = {VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_R32G32B32A32_UINT,
                                 VK_FORMAT_R32G32B32A32_SFLOAT};
    const uint32_t cpu_spec[1] = {cpu_local};
    /* (a chunk may start up to ENN_VIEW_ALIGN bytes into its binding) */
    int rows_fit = enn_ops_uint_texels(ctx) && enn_ops_word_texels_fit(ctx, labels, R) &&
                   enn_ops_word_texels_fit(ctx, lse, R);
    int columns = rows_fit && dbias.buf && V % 4 == 0 && cpu_kernels_fit(ctx, 0, 0, (uint64_t)chunk * V + ENN_VIEW_ALIGN / 4);
    const enn_pipeline *cpu_pipe = NULL;
    if (columns || (rows_fit && cpu_kernels_fit(ctx, 0, 0, 0))) {
        enn_pipeline_desc pd = {.shader = columns ? "softmax_cross_entropy_backward_columns"
                                                  : "softmax_cross_entropy_backward_runs",
                                .num_buffers = columns ? 6 : 5, .push_size = sizeof(backward_push), .spec = cpu_spec,
                                .spec_count = 1, .texel_formats = texel_formats};
        ENN_TRY(enn_pipeline_get(ctx, &pd, &cpu_pipe));
    }
    for (uint32_t row0 = 0; row0 < R; row0 += chunk) {
        uint32_t rows = R - row0 < chunk ? R - row0 : chunk;
        backward_push push = {rows, V, shape->ignore_index, row0, 0, 0, scale, CPU_RUN_VEC4S};
        enn_binding b[6] = {
            enn_ops_bind_rows(logits, row_bytes, row0, rows, in_place ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_READ,
                              &push.elem_offset),
            enn_bind(labels, R * 4ull, ENN_ACCESS_READ), enn_bind(lse, R * 4ull, ENN_ACCESS_READ),
            enn_bind(stats, sizeof(enn_xent_stats), ENN_ACCESS_READ)};
        b[4] = enn_ops_bind_rows(dlogits, row_bytes, row0, rows, ENN_ACCESS_WRITE, &push.out_offset);
        uint64_t elements = (uint64_t)rows * V;
        if (cpu_pipe && cpu_kernels_fit(ctx, push.elem_offset, push.out_offset, elements)) {
            /* Logits read as texels, gradients written through binding 4, in place or not. */
            b[0].access = ENN_ACCESS_READ;
            uint64_t invocations = columns ? V / 4 : ((elements + 3) / 4 + CPU_RUN_VEC4S - 1) / CPU_RUN_VEC4S;
            if (columns) b[5] = enn_bind(dbias, row_bytes, ENN_ACCESS_READ_WRITE);
            uint32_t gx, gy;
            ENN_TRY(enn_ops_grid_groups(ctx, (invocations + cpu_local - 1) / cpu_local, op, &gx, &gy));
            ENN_TRY(enn_record_dispatch(rec, cpu_pipe, b, columns ? 6 : 5, &push, gx, gy, 1, "softmax_xent_backward"));
            continue;
        }
        if (columns)
            return enn_error(ENN_ERROR_INTERNAL, "%s: chunk at row %u does not fit the column kernel", op, row0);
        ENN_TRY(enn_record_dispatch(rec, pipe, b, in_place ? 4 : 5, &push, (uint32_t)blocks, rows, 1,
                                    "softmax_xent_backward"));
    }
    if (dbias.buf && !columns) ENN_TRY(enn_sum_rows_named(rec, "softmax_xent_dbias", R, V, dlogits, 1.0f, 1.0f, dbias));
    return ENN_OK;
}
