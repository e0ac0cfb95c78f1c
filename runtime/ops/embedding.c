/* Launchers for shaders/embedding.comp. */
#include "ops/embedding.h"

#include "ops/launch.h"

#define LOCAL 256

typedef struct embedding_push {
    uint32_t rows, dim, vocab;
} embedding_push;

static enn_status check(const char *op, uint32_t rows, uint32_t dim, uint32_t vocab)
{
    if (!rows || !dim || !vocab)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: rows %u, dim %u, vocab %u", op, rows, dim, vocab);
    if ((uint64_t)rows * dim > 0xffffffffu || (uint64_t)vocab * dim > 0xffffffffu || rows >= 0x7fffffffu)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: rows %u, dim %u, vocab %u is past 32-bit indexing", op, rows,
                         dim, vocab);
    return ENN_OK;
}

/* Columns per invocation of the lookup and the backward's sums: 4 (a vec4 per access) on
 * CPU devices when dim % 4 == 0, where every storage access is a loop over the SIMD lanes
 * whatever its width; 1 on GPUs. */
static uint32_t columns_per_invocation(const enn_context *ctx, uint32_t dim)
{
    return ctx->caps.device_type == ENN_DEVICE_CPU && dim % 4 == 0 ? 4 : 1;
}

static enn_status pipeline_vec(enn_context *ctx, const char *shader, uint32_t buffers, uint32_t local, uint32_t vec,
                               const enn_pipeline **out)
{
    const uint32_t spec[2] = {local, vec == 4};
    enn_pipeline_desc d = {.shader = shader, .num_buffers = buffers, .push_size = sizeof(embedding_push),
                           .spec = spec, .spec_count = 2};
    return enn_pipeline_get(ctx, &d, out);
}

enn_status enn_embedding_forward(enn_recorder *rec, uint32_t rows, uint32_t dim, uint32_t vocab, enn_view table,
                                 enn_view ids, enn_view out)
{
    const char *op = "embedding_forward";
    enn_context *ctx = enn_recorder_context(rec);
    ENN_TRY(check(op, rows, dim, vocab));
    uint64_t table_bytes = (uint64_t)vocab * dim * 4, out_bytes = (uint64_t)rows * dim * 4;
    ENN_TRY(enn_ops_check_view(op, "table", table, table_bytes));
    ENN_TRY(enn_ops_check_view(op, "ids", ids, rows * 4ull));
    ENN_TRY(enn_ops_check_view(op, "out", out, out_bytes));
    uint32_t local = enn_ops_local_size(ctx, LOCAL, 0), vec = columns_per_invocation(ctx, dim);
    const enn_pipeline *pipe;
    ENN_TRY(pipeline_vec(ctx, "embedding", 3, local, vec, &pipe));
    enn_binding b[3] = {enn_bind(table, table_bytes, ENN_ACCESS_READ), enn_bind(ids, rows * 4ull, ENN_ACCESS_READ),
                        enn_bind(out, out_bytes, ENN_ACCESS_WRITE)};
    embedding_push push = {rows, dim, vocab};
    uint32_t gx, gy;
    ENN_TRY(enn_ops_grid_groups(ctx, (out_bytes / 4 / vec + local - 1) / local, op, &gx, &gy));
    return enn_record_dispatch(rec, pipe, b, 3, &push, gx, gy, 1, op);
}

/* embedding_links_texel (CPU devices, not ENN_DISABLE_TEXEL_BUFFERS): ids as RGBA32UI
 * texels; each invocation owns 8 rows (the shader's two uvec4s), 8 invocations per
 * workgroup (one SIMD group of llvmpipe's). */
#define LINKS_TEXEL_ROWS 8u
#define LINKS_TEXEL_LOCAL 8u

static int links_texel_fit(const enn_context *ctx, enn_view ids, uint32_t rows)
{
    return ctx->caps.device_type == ENN_DEVICE_CPU && enn_ops_uint_texels(ctx) &&
           enn_ops_word_texels_fit(ctx, ids, rows);
}

uint64_t enn_embedding_backward_workspace_bytes(uint32_t rows) { return (uint64_t)rows * 4; }

enn_status enn_embedding_backward(enn_recorder *rec, uint32_t rows, uint32_t dim, uint32_t vocab, enn_view ids,
                                  enn_view dout, enn_view workspace, enn_view dtable)
{
    const char *op = "embedding_backward";
    enn_context *ctx = enn_recorder_context(rec);
    ENN_TRY(check(op, rows, dim, vocab));
    uint64_t table_bytes = (uint64_t)vocab * dim * 4, out_bytes = (uint64_t)rows * dim * 4;
    ENN_TRY(enn_ops_check_view(op, "ids", ids, rows * 4ull));
    ENN_TRY(enn_ops_check_view(op, "dout", dout, out_bytes));
    ENN_TRY(enn_ops_check_view(op, "workspace", workspace, enn_embedding_backward_workspace_bytes(rows)));
    ENN_TRY(enn_ops_check_view(op, "dtable", dtable, table_bytes));

    /* Pass 1: links (one uint per position), tiles of ids in shared memory. Each
     * invocation scans every id, so small workgroups: more of them for the same rows.
     * CPU devices: the texel kernel, 8 rows per invocation (LINKS_TEXEL_ROWS). */
    const enn_pipeline *links_pipe, *pipe;
    uint32_t local, rows_per_group;
    if (links_texel_fit(ctx, ids, rows)) {
        local = enn_ops_local_size(ctx, LINKS_TEXEL_LOCAL, 0);
        rows_per_group = local * LINKS_TEXEL_ROWS;
        const VkFormat formats[2] = {VK_FORMAT_R32G32B32A32_UINT, VK_FORMAT_UNDEFINED};
        const uint32_t spec[1] = {local};
        enn_pipeline_desc d = {.shader = "embedding_links_texel", .num_buffers = 2, .push_size = sizeof(uint32_t),
                               .spec = spec, .spec_count = 1, .texel_formats = formats};
        ENN_TRY(enn_pipeline_get(ctx, &d, &links_pipe));
    } else {
        local = rows_per_group = enn_ops_local_size(ctx, 64, 4);
        ENN_TRY(enn_ops_pipeline_local(ctx, "embedding_links", 2, sizeof(uint32_t), local, 0, &links_pipe));
    }
    uint64_t groups = ((uint64_t)rows + rows_per_group - 1) / rows_per_group;
    if (groups > ctx->caps.max_workgroup_count[0])
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %u ids need %llu workgroups", op, rows, (unsigned long long)groups);
    enn_binding lb[2] = {enn_bind(ids, rows * 4ull, ENN_ACCESS_READ),
                         enn_bind(workspace, rows * 4ull, ENN_ACCESS_WRITE)};
    ENN_TRY(enn_record_dispatch(rec, links_pipe, lb, 2, &rows, (uint32_t)groups, 1, 1, "embedding_links"));

    /* Pass 2: the first position of each id sums its rows and adds them into the table. */
    uint32_t blocal = enn_ops_local_size(ctx, LOCAL, 0), vec = columns_per_invocation(ctx, dim);
    ENN_TRY(pipeline_vec(ctx, "embedding_backward", 4, blocal, vec, &pipe));
    enn_binding b[4] = {enn_bind(ids, rows * 4ull, ENN_ACCESS_READ), enn_bind(workspace, rows * 4ull, ENN_ACCESS_READ),
                        enn_bind(dout, out_bytes, ENN_ACCESS_READ), enn_bind(dtable, table_bytes, ENN_ACCESS_READ_WRITE)};
    embedding_push push = {rows, dim, vocab};
    uint32_t gx, gy;
    ENN_TRY(enn_ops_grid_groups(ctx, (out_bytes / 4 / vec + blocal - 1) / blocal, op, &gx, &gy));
    return enn_record_dispatch(rec, pipe, b, 4, &push, gx, gy, 1, op);
}
