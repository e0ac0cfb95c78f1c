/* Launchers for shaders/reduce.comp, and parameter tables. */
#include "ops/reduce.h"

#include <stdlib.h>

#include "ops/launch.h"

#define LOCAL 256

typedef struct sum_push {
    uint32_t rows, cols, elem_offset, row0;
    float alpha, beta;
} sum_push;

typedef struct sumsq_push {
    uint32_t chunk_elems, tensor_count, total_chunks, flat_count, take_sqrt;
    uint32_t chunk_base, elem_base; /* the window: first chunk, float its binding starts at */
} sumsq_push;

static enn_status check_matrix(const char *op, const enn_context *ctx, uint32_t rows, uint32_t cols, uint32_t *chunk)
{
    if (!rows || !cols) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %u x %u matrix", op, rows, cols);
    *chunk = enn_ops_rows_per_binding(ctx, (uint64_t)cols * 4, 0);
    if (!*chunk) return enn_error(ENN_ERROR_UNSUPPORTED, "%s: a row of %u floats is more than the device binds", op, cols);
    if ((uint64_t)*chunk * cols > 0xffffffffu) *chunk = (uint32_t)(0xffffffffu / cols);
    return ENN_OK;
}

/* reduce_rows_texel (CPU devices): x as RGBA32F texels, so whole vec4 rows starting on a
 * vec4 (cols % 4 == 0, elem_offset % 4 == 0) and a view the device allows; not with
 * ENN_DISABLE_TEXEL_BUFFERS. 8 invocations per workgroup, each summing 4 columns over
 * every row: on lavapipe a workgroup is one 8-lane SIMD loop, so workgroups are what
 * spreads over the cores. On lavapipe (paper-mnist) the ENN's three bias gradients per
 * step took 3.9-4.8 ms with the storage-buffer kernel, 0.7-0.9 ms with this one. */
#define ROWS_TEXEL_LOCAL 8

static int rows_texel_fit(const enn_context *ctx, uint32_t cols, uint32_t elem_offset, uint64_t elements)
{
    const enn_capabilities *c = &ctx->caps;
    return c->device_type == ENN_DEVICE_CPU && c->texel_buffer_f32 && c->min_texel_buffer_offset_alignment <= ENN_VIEW_ALIGN &&
           cols % 4 == 0 && elem_offset % 4 == 0 && (elem_offset + elements) / 4 <= c->max_texel_buffer_elements;
}

static enn_status rows_texel_pipeline(enn_context *ctx, const enn_pipeline **out)
{
    static const VkFormat formats[2] = {VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_UNDEFINED};
    const uint32_t spec[2] = {ROWS_TEXEL_LOCAL, 1};
    enn_pipeline_desc d = {.shader = "reduce_rows_texel", .num_buffers = 2, .push_size = sizeof(sum_push),
                           .spec = spec, .spec_count = 2, .texel_formats = formats};
    return enn_pipeline_get(ctx, &d, out);
}

enn_status enn_sum_rows(enn_recorder *rec, uint32_t rows, uint32_t cols, enn_view x, float alpha, float beta,
                        enn_view out)
{
    return enn_sum_rows_named(rec, "sum_rows", rows, cols, x, alpha, beta, out);
}

enn_status enn_sum_rows_named(enn_recorder *rec, const char *op, uint32_t rows, uint32_t cols, enn_view x, float alpha,
                              float beta, enn_view out)
{
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t chunk;
    ENN_TRY(check_matrix(op, ctx, rows, cols, &chunk));
    uint64_t row_bytes = (uint64_t)cols * 4;
    ENN_TRY(enn_ops_check_view(op, "x", x, rows * row_bytes));
    ENN_TRY(enn_ops_check_view(op, "out", out, row_bytes));
    /* local_size_x columns by local_size_y row lanes: 32 x 8, or for narrow matrices
     * fewer columns and more lanes (3 columns: 4 x 64), so rows still spread out. */
    uint32_t want_x = 1;
    while (want_x < cols && want_x < 32) want_x *= 2;
    uint32_t lx = enn_ops_local_size(ctx, want_x, 4), ly = enn_ops_local_size(ctx, LOCAL, 4) / lx;
    if (ly > ctx->caps.max_workgroup_size[1]) ly = enn_ops_local_size(ctx, ctx->caps.max_workgroup_size[1], 0);
    if (ly == 0) ly = 1;
    const enn_pipeline *pipe, *texel_pipe = NULL;
    ENN_TRY(enn_ops_pipeline_local(ctx, "reduce", 2, sizeof(sum_push), lx, ly, &pipe));
    uint64_t groups = ((uint64_t)cols + lx - 1) / lx;
    if (groups > ctx->caps.max_workgroup_count[0])
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %u columns need %llu workgroups", op, cols, (unsigned long long)groups);
    /* Row chunks accumulate: the first applies beta, the later ones add (beta 1). */
    for (uint32_t row0 = 0; row0 < rows; row0 += chunk) {
        uint32_t n = rows - row0 < chunk ? rows - row0 : chunk;
        float b = row0 == 0 ? beta : 1.0f;
        sum_push push = {n, cols, 0, 0, alpha, b};
        enn_binding bind[2] = {enn_ops_bind_rows(x, row_bytes, row0, n, ENN_ACCESS_READ, &push.elem_offset),
                               enn_bind(out, row_bytes, b == 0.0f ? ENN_ACCESS_WRITE : ENN_ACCESS_READ_WRITE)};
        if (rows_texel_fit(ctx, cols, push.elem_offset, (uint64_t)n * cols)) {
            if (!texel_pipe) ENN_TRY(rows_texel_pipeline(ctx, &texel_pipe));
            uint32_t invocations = cols / 4, tg = (invocations + ROWS_TEXEL_LOCAL - 1) / ROWS_TEXEL_LOCAL;
            ENN_TRY(enn_record_dispatch(rec, texel_pipe, bind, 2, &push, tg, 1, 1, op));
        } else {
            ENN_TRY(enn_record_dispatch(rec, pipe, bind, 2, &push, (uint32_t)groups, 1, 1, op));
        }
    }
    return ENN_OK;
}

enn_status enn_sum_cols(enn_recorder *rec, uint32_t rows, uint32_t cols, enn_view x, float alpha, float beta,
                        enn_view out)
{
    const char *op = "sum_cols";
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t chunk;
    ENN_TRY(check_matrix(op, ctx, rows, cols, &chunk));
    uint64_t row_bytes = (uint64_t)cols * 4;
    ENN_TRY(enn_ops_check_view(op, "x", x, rows * row_bytes));
    ENN_TRY(enn_ops_check_view(op, "out", out, rows * 4ull));
    /* One workgroup per row: 32 lanes for short rows, 256 for long ones. */
    uint32_t local = enn_ops_local_size(ctx, cols <= 1024 ? 32 : LOCAL, 4);
    const enn_pipeline *pipe;
    ENN_TRY(enn_ops_pipeline_local(ctx, "reduce_cols", 2, sizeof(sum_push), local, 0, &pipe));
    for (uint32_t row0 = 0; row0 < rows; row0 += chunk) {
        uint32_t n = rows - row0 < chunk ? rows - row0 : chunk;
        sum_push push = {n, cols, 0, row0, alpha, beta};
        enn_binding bind[2] = {enn_ops_bind_rows(x, row_bytes, row0, n, ENN_ACCESS_READ, &push.elem_offset),
                               enn_bind(out, rows * 4ull, beta == 0.0f ? ENN_ACCESS_WRITE : ENN_ACCESS_READ_WRITE)};
        uint32_t gx, gy;
        ENN_TRY(enn_ops_grid_groups(ctx, n, op, &gx, &gy));
        ENN_TRY(enn_record_dispatch(rec, pipe, bind, 2, &push, gx, gy, 1, op));
    }
    return ENN_OK;
}

enn_status enn_param_table_create(enn_context *ctx, const enn_param_range *ranges, uint32_t count,
                                  enn_param_table **out)
{
    if (!ctx || !ranges || !count || !out)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_param_table_create: no ranges");
    uint64_t chunks = 0, extent = 0;
    for (uint32_t k = 0; k < count; k++) {
        if (!ranges[k].count) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "parameter table: tensor %u is empty", k);
        uint64_t end = (uint64_t)ranges[k].offset + ranges[k].count;
        if (end > 0xffffffffu) return enn_error(ENN_ERROR_OUT_OF_RANGE, "parameter table: tensor %u ends past 2^32 floats", k);
        for (uint32_t j = 0; j < k; j++)
            if (ranges[j].offset < end && ranges[k].offset < (uint64_t)ranges[j].offset + ranges[j].count)
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "parameter table: tensors %u and %u overlap", j, k);
        chunks += (ranges[k].count + ENN_PARAM_CHUNK - 1) / ENN_PARAM_CHUNK;
        if (end > extent) extent = end;
    }
    uint32_t *words = malloc(count * 16ull);
    enn_param_table *t = calloc(1, sizeof *t);
    if (!words || !t) {
        free(words);
        free(t);
        return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "parameter table");
    }
    uint32_t first = 0;
    t->offsets_vec4 = 1;
    for (uint32_t k = 0; k < count; k++) {
        if (ranges[k].offset % 4) t->offsets_vec4 = 0;
        words[4 * k] = ranges[k].offset;
        words[4 * k + 1] = ranges[k].count;
        words[4 * k + 2] = first;
        words[4 * k + 3] = ranges[k].flags;
        first += (ranges[k].count + ENN_PARAM_CHUNK - 1) / ENN_PARAM_CHUNK;
    }
    t->tensor_count = count;
    t->chunk_count = (uint32_t)chunks;
    t->chunk_elems = ENN_PARAM_CHUNK;
    t->extent = extent;
    t->host = words;
    enn_status s = enn_buffer_create(ctx, count * 16ull, &t->table);
    if (s == ENN_OK) s = enn_buffer_upload(ctx, t->table, 0, words, count * 16ull);
    if (s == ENN_OK) s = enn_buffer_create(ctx, chunks * 4, &t->partials);
    if (s == ENN_OK) s = enn_buffer_create(ctx, count * 4ull, &t->sumsq);
    if (s != ENN_OK) {
        enn_param_table_destroy(ctx, t);
        return s;
    }
    *out = t;
    return ENN_OK;
}

void enn_param_table_destroy(enn_context *ctx, enn_param_table *t)
{
    if (!t) return;
    enn_buffer_destroy(ctx, t->table);
    enn_buffer_destroy(ctx, t->partials);
    enn_buffer_destroy(ctx, t->sumsq);
    free(t->host);
    free(t);
}

/* Floats a window's binding start is aligned to. */
static uint32_t window_align_floats(const enn_context *ctx)
{
    uint64_t a = ctx->caps.min_storage_buffer_offset_alignment;
    if (a < ENN_VIEW_ALIGN) a = ENN_VIEW_ALIGN;
    return (uint32_t)(a / 4);
}

enn_status enn_param_table_window(const enn_context *ctx, const enn_param_table *t, uint32_t chunk0,
                                  enn_param_window *out)
{
    uint64_t range = ctx->caps.max_storage_buffer_range;
    if (chunk0 >= t->chunk_count)
        return enn_error(ENN_ERROR_INTERNAL, "parameter table window at chunk %u of %u", chunk0, t->chunk_count);
    if (t->extent * 4 <= range) {
        *out = (enn_param_window){chunk0, t->chunk_count - chunk0, 0, t->extent * 4};
        return ENN_OK;
    }
    /* Grow the window chunk by chunk over the tensors in table order (tensors need not
     * be in offset order, so the span is the min and max over its chunks); a tensor's
     * remaining chunks are tried whole first, so the walk is short. */
    uint64_t align = window_align_floats(ctx), lo = UINT64_MAX, hi = 0;
    uint32_t k = 0, c = chunk0;
    while (k + 1 < t->tensor_count && t->host[4 * (k + 1) + 2] <= chunk0) k++;
    for (; k < t->tensor_count; k++) {
        uint64_t offset = t->host[4 * k], count = t->host[4 * k + 1], first = t->host[4 * k + 2];
        uint64_t nchunks = (count + ENN_PARAM_CHUNK - 1) / ENN_PARAM_CHUNK;
        uint64_t s = offset + (c - first) * ENN_PARAM_CHUNK, e = offset + count;
        uint64_t nlo = s < lo ? s : lo, nhi = e > hi ? e : hi;
        if ((nhi - nlo / align * align) * 4 <= range) {
            lo = nlo, hi = nhi;
            c = (uint32_t)(first + nchunks);
            continue;
        }
        for (uint64_t j = c - first; j < nchunks; j++) {
            s = offset + j * ENN_PARAM_CHUNK;
            e = s + ENN_PARAM_CHUNK < offset + count ? s + ENN_PARAM_CHUNK : offset + count;
            nlo = s < lo ? s : lo, nhi = e > hi ? e : hi;
            if ((nhi - nlo / align * align) * 4 > range) break;
            lo = nlo, hi = nhi;
            c++;
        }
        break;
    }
    if (c == chunk0)
        return enn_error(ENN_ERROR_UNSUPPORTED, "parameter table: a chunk of %u floats does not fit a binding of %llu "
                         "bytes", ENN_PARAM_CHUNK, (unsigned long long)range);
    uint64_t base = lo / align * align;
    *out = (enn_param_window){chunk0, c - chunk0, (uint32_t)base, (hi - base) * 4};
    return ENN_OK;
}

/* The two passes: sum of squares per chunk, then per tensor. table is the parameter
 * table, or NULL in flat mode (flat_count floats from x). x is bound a window of chunks
 * at a time when it is larger than one binding may be. */
static enn_status sumsq_passes(enn_recorder *rec, const char *op, const enn_param_table *table, uint32_t chunks,
                               uint64_t flat_count, enn_view x, enn_binding partials_bind, enn_binding out_bind,
                               uint32_t outputs, int take_sqrt)
{
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t local = enn_ops_local_size(ctx, LOCAL, 4);
    const enn_pipeline *partial, *final;
    /* CPU devices: x as vec4 texels where every tensor starts on a vec4 (flat chunks
     * and windows start on multiples of 64 floats). */
    uint64_t extent = table ? table->extent : flat_count;
    if (ctx->caps.device_type == ENN_DEVICE_CPU && (!table || table->offsets_vec4) &&
        enn_ops_texel_views_fit(ctx, &x, 1, extent / 4 + 1)) {
        const VkFormat formats[3] = {VK_FORMAT_UNDEFINED, VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_UNDEFINED};
        /* one SIMD group of llvmpipe's per chunk: the shared-memory tree after the
         * loop costs a loop over the lanes per access there */
        const uint32_t spec[1] = {enn_ops_local_size(ctx, 8, 4)};
        enn_pipeline_desc d = {.shader = "reduce_sumsq_partial_texel", .num_buffers = 3, .push_size = sizeof(sumsq_push),
                               .spec = spec, .spec_count = 1, .texel_formats = formats};
        ENN_TRY(enn_pipeline_get(ctx, &d, &partial));
    } else
        ENN_TRY(enn_ops_pipeline_local(ctx, "reduce_sumsq_partial", 3, sizeof(sumsq_push), local, 0, &partial));
    ENN_TRY(enn_ops_pipeline_local(ctx, "reduce_sumsq_final", 3, sizeof(sumsq_push), local, 0, &final));
    uint32_t tensor_count = table ? table->tensor_count : 0;
    /* Flat mode has no table: x's first window doubles as the (unread) table binding. */
    enn_binding table_bind = table ? ENN_IN(table->table) : enn_bind(x, 4, ENN_ACCESS_READ);
    for (uint32_t c0 = 0; c0 < chunks;) {
        enn_param_window w;
        if (table) ENN_TRY(enn_param_table_window(ctx, table, c0, &w));
        else {
            /* Flat chunks start at multiples of ENN_PARAM_CHUNK floats, 16 KiB apart. */
            uint64_t per = ctx->caps.max_storage_buffer_range / (ENN_PARAM_CHUNK * 4ull);
            if (!per)
                return enn_error(ENN_ERROR_UNSUPPORTED, "%s: a chunk of %u floats does not fit a binding", op,
                                 ENN_PARAM_CHUNK);
            uint32_t n = chunks - c0 < per ? chunks - c0 : (uint32_t)per;
            uint64_t base = (uint64_t)c0 * ENN_PARAM_CHUNK, end = base + (uint64_t)n * ENN_PARAM_CHUNK;
            if (end > flat_count) end = flat_count;
            w = (enn_param_window){c0, n, (uint32_t)base, (end - base) * 4};
        }
        sumsq_push push = {ENN_PARAM_CHUNK, tensor_count, w.chunk0 + w.chunks, (uint32_t)flat_count,
                           take_sqrt ? 1u : 0u, w.chunk0, w.elem_base};
        uint32_t gx, gy;
        ENN_TRY(enn_ops_grid_groups(ctx, w.chunks, op, &gx, &gy));
        enn_binding b1[3] = {table_bind, enn_bind(enn_view_at(x.buf, x.offset + (uint64_t)w.elem_base * 4), w.bytes,
                                                  ENN_ACCESS_READ),
                             partials_bind};
        ENN_TRY(enn_record_dispatch(rec, partial, b1, 3, &push, gx, gy, 1, "sumsq_partial"));
        c0 += w.chunks;
    }
    sumsq_push push = {ENN_PARAM_CHUNK, tensor_count, chunks, (uint32_t)flat_count, take_sqrt ? 1u : 0u, 0, 0};
    partials_bind.access = ENN_ACCESS_READ;
    enn_binding b2[3] = {table_bind, partials_bind, out_bind};
    if (outputs > ctx->caps.max_workgroup_count[0])
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %u tensors", op, outputs);
    return enn_record_dispatch(rec, final, b2, 3, &push, outputs, 1, 1, "sumsq_final");
}

enn_status enn_param_table_sumsq(enn_recorder *rec, const enn_param_table *t, enn_view x, enn_view out,
                                 int take_sqrt)
{
    const char *op = "param_table_sumsq";
    if (!t) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: table is NULL", op);
    ENN_TRY(enn_ops_check_view(op, "x", x, t->extent * 4));
    ENN_TRY(enn_ops_check_view(op, "out", out, t->tensor_count * 4ull));
    return sumsq_passes(rec, op, t, t->chunk_count, 0, x, ENN_OUT(t->partials),
                        enn_bind(out, t->tensor_count * 4ull, ENN_ACCESS_WRITE), t->tensor_count, take_sqrt);
}

uint64_t enn_l2_norm_workspace_bytes(uint64_t n) { return (n + ENN_PARAM_CHUNK - 1) / ENN_PARAM_CHUNK * 4; }

enn_status enn_l2_norm(enn_recorder *rec, uint64_t n, enn_view x, enn_view workspace, enn_view out)
{
    const char *op = "l2_norm";
    if (!n || n > 0xffffffffu) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %llu floats", op, (unsigned long long)n);
    ENN_TRY(enn_ops_check_view(op, "x", x, n * 4));
    ENN_TRY(enn_ops_check_view(op, "workspace", workspace, enn_l2_norm_workspace_bytes(n)));
    ENN_TRY(enn_ops_check_view(op, "out", out, 4));
    uint32_t chunks = (uint32_t)(enn_l2_norm_workspace_bytes(n) / 4);
    return sumsq_passes(rec, op, NULL, chunks, n, x, enn_bind(workspace, chunks * 4ull, ENN_ACCESS_WRITE),
                        enn_bind(out, 4, ENN_ACCESS_WRITE), 1, 1);
}
