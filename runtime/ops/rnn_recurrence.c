/* Launcher of shaders/rnn_recurrence_cpu.comp: see rnn_recurrence.h. */
#include "ops/rnn_recurrence.h"

#include "ops/launch.h"

/* The shader's register block spells out this many rows (at most 8); a workgroup of 8
 * invocations shares the columns, as two cores need only a few workgroups busy. */
#define ROWS 8

typedef struct rnn_push {
    uint32_t B, T;
    uint32_t slab_u, slab_w; /* vec4 units */
} rnn_push;

static uint32_t gates(enn_rnn_cell cell) { return cell == ENN_RNN_CELL_LSTM ? 4 : cell == ENN_RNN_CELL_GRU ? 3 : 1; }

/* Bytes a sequence binding covers: every slab up to row B of the last. */
static uint64_t seq_bytes(const enn_rnn_recurrence_shape *s, uint32_t steps, uint64_t slab, uint32_t width)
{
    return (uint64_t)(steps - 1) * slab + (uint64_t)s->B * width * 4;
}

int enn_rnn_recurrence_available(const enn_context *ctx, const enn_rnn_recurrence_shape *s, enn_view U)
{
    const enn_capabilities *c = &ctx->caps;
    uint32_t align = c->min_texel_buffer_offset_alignment ? c->min_texel_buffer_offset_alignment : 1;
    if (c->device_type != ENN_DEVICE_CPU || !c->texel_buffer_f32 || !c->storage_texel_buffer_f32) return 0;
    if (!s->units || s->units % 4 || !s->T || !s->B || U.offset % align) return 0;
    if (enn_ops_local_size(ctx, ROWS, 0) < ROWS || ctx->env.disable_rnn_recurrence) return 0;
    uint32_t w = gates(s->cell) * s->units;
    uint64_t largest[3] = {(uint64_t)s->units * w * 4, seq_bytes(s, s->T + 1, s->slab_u, s->units),
                           seq_bytes(s, s->T, s->slab_w, w)};
    for (int i = 0; i < 3; i++)
        if (largest[i] / 16 > c->max_texel_buffer_elements || largest[i] > 0xffffffffull) return 0;
    return 1;
}

typedef struct operand {
    const char *name;
    enn_view view;
    uint64_t bytes;
    enn_access access;
    int storage_texel; /* else a uniform texel buffer */
} operand;

static enn_status launch(enn_recorder *rec, const char *op, const char *shader, const enn_rnn_recurrence_shape *s,
                         enn_view U, const operand *ops, uint32_t count)
{
    enn_context *ctx = enn_recorder_context(rec);
    uint32_t u = s->units, w = gates(s->cell) * u;
    if (!enn_rnn_recurrence_available(ctx, s, U))
        return enn_error(ENN_ERROR_UNSUPPORTED,
                         "%s: no fused recurrence for T = %u, B = %u, units = %u on %s (needs a CPU device, texel "
                         "buffers, units %% 4 == 0)",
                         op, s->T, s->B, u, ctx->caps.device_name);
    if (s->slab_u % ENN_VIEW_ALIGN || s->slab_w % ENN_VIEW_ALIGN || s->slab_u < (uint64_t)s->B * u * 4 ||
        s->slab_w < (uint64_t)s->B * w * 4)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT,
                         "%s: slabs of %llu and %llu bytes for %u rows of %u and %u floats (need multiples of %d)", op,
                         (unsigned long long)s->slab_u, (unsigned long long)s->slab_w, s->B, u, w, ENN_VIEW_ALIGN);
    uint32_t align = ctx->caps.min_texel_buffer_offset_alignment ? ctx->caps.min_texel_buffer_offset_alignment : 1;
    enn_binding b[8];
    VkFormat formats[8];
    uint32_t storage_mask = 0;
    b[0] = enn_bind(U, (uint64_t)u * w * 4, ENN_ACCESS_READ);
    ENN_TRY(enn_ops_check_view(op, "U", U, b[0].size));
    formats[0] = VK_FORMAT_R32G32B32A32_SFLOAT;
    for (uint32_t i = 0; i < count; i++) {
        ENN_TRY(enn_ops_check_view(op, ops[i].name, ops[i].view, ops[i].bytes));
        if (ops[i].view.offset % align)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %s offset %llu is not a multiple of %u", op, ops[i].name,
                             (unsigned long long)ops[i].view.offset, align);
        b[i + 1] = enn_bind(ops[i].view, ops[i].bytes, ops[i].access);
        formats[i + 1] = VK_FORMAT_R32G32B32A32_SFLOAT;
        if (ops[i].storage_texel) storage_mask |= 1u << (i + 1);
    }
    uint32_t local = enn_ops_local_size(ctx, ROWS, 0);
    /* The products that are not gate-major (backward, SimpleRNN) give each invocation up
     * to 4 of the u / 4 column groups: fewer where 4 would leave invocations idle. */
    uint32_t groups = u / 4 >= 4 * local ? 4 : u / 4 >= 2 * local ? 2 : 1;
    const uint32_t spec[6] = {local, 1, 1, ROWS, u, groups};
    enn_pipeline_desc d = {.shader = shader, .num_buffers = count + 1, .push_size = sizeof(rnn_push), .spec = spec,
                           .spec_count = 6, .texel_formats = formats, .storage_texel_mask = storage_mask};
    const enn_pipeline *pipe;
    ENN_TRY(enn_pipeline_get(ctx, &d, &pipe));
    rnn_push push = {s->B, s->T, (uint32_t)(s->slab_u / 16), (uint32_t)(s->slab_w / 16)};
    return enn_record_dispatch(rec, pipe, b, count + 1, &push, enn_ops_row_groups(rec, (s->B + ROWS - 1) / ROWS), 1,
                               1, shader);
}

enn_status enn_rnn_recurrence_forward(enn_recorder *rec, const enn_rnn_recurrence_shape *s, enn_view U,
                                      enn_view b_rec, enn_view hs, enn_view pre, enn_view cs, enn_view hu)
{
    const char *op = "rnn_recurrence_forward";
    if (!s || !s->T || !s->B || !s->units)
        return enn_error(ENN_ERROR_SHAPE, "%s: T = %u, B = %u, units = %u", op, s ? s->T : 0, s ? s->B : 0,
                         s ? s->units : 0);
    uint32_t u = s->units, w = gates(s->cell) * u;
    uint64_t bh = seq_bytes(s, s->T + 1, s->slab_u, u), bw = seq_bytes(s, s->T, s->slab_w, w);
    const operand hs_rw = {"hs", hs, bh, ENN_ACCESS_READ_WRITE, 1};
    if (s->cell == ENN_RNN_CELL_SIMPLE)
        return launch(rec, op, "rnn_recurrence_cpu_simple", s, U, &hs_rw, 1);
    if (s->cell == ENN_RNN_CELL_LSTM) {
        const operand ops[] = {hs_rw, {"pre", pre, bw, ENN_ACCESS_READ_WRITE, 1},
                               {"cs", cs, bh, ENN_ACCESS_READ_WRITE, 1}};
        return launch(rec, op, "rnn_recurrence_cpu", s, U, ops, 3);
    }
    const operand ops[] = {hs_rw, {"pre", pre, bw, ENN_ACCESS_READ_WRITE, 1}, {"hu", hu, bw, ENN_ACCESS_WRITE, 1},
                           {"b_rec", b_rec, (uint64_t)w * 4, ENN_ACCESS_READ, 0}};
    return launch(rec, op, "rnn_recurrence_cpu_gru", s, U, ops, 4);
}

/* Ut [w, u] = U^T [u, w]^T, one invocation per 4 x 4 block. */
static enn_status transpose(enn_recorder *rec, const char *op, enn_view U, enn_view Ut, uint32_t u, uint32_t w)
{
    enn_context *ctx = enn_recorder_context(rec);
    uint64_t bytes = (uint64_t)u * w * 4;
    ENN_TRY(enn_ops_check_view(op, "U", U, bytes));
    ENN_TRY(enn_ops_check_view(op, "Ut", Ut, bytes));
    uint32_t align = ctx->caps.min_texel_buffer_offset_alignment ? ctx->caps.min_texel_buffer_offset_alignment : 1;
    if (Ut.offset % align)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: Ut offset %llu is not a multiple of %u", op,
                         (unsigned long long)Ut.offset, align);
    enn_binding b[2] = {enn_bind(U, bytes, ENN_ACCESS_READ), enn_bind(Ut, bytes, ENN_ACCESS_WRITE)};
    const VkFormat formats[2] = {VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_R32G32B32A32_SFLOAT};
    uint32_t local = enn_ops_local_size(ctx, 64, 0);
    const uint32_t spec[6] = {local, 1, 1, ROWS, u, 1};
    enn_pipeline_desc d = {.shader = "rnn_recurrence_cpu_transpose", .num_buffers = 2, .push_size = 4, .spec = spec,
                           .spec_count = 6, .texel_formats = formats, .storage_texel_mask = 2u};
    const enn_pipeline *pipe;
    ENN_TRY(enn_pipeline_get(ctx, &d, &pipe));
    uint32_t gx = 0, gy = 0, width4 = w / 4;
    ENN_TRY(enn_ops_grid(rec, (uint64_t)u / 4 * width4, local, &gx, &gy));
    return enn_record_dispatch(rec, pipe, b, 2, &width4, gx, gy, 1, "rnn_recurrence_cpu_transpose");
}

enn_status enn_rnn_recurrence_backward(enn_recorder *rec, const enn_rnn_recurrence_shape *s, enn_view U, enn_view Ut,
                                       enn_view hs, enn_view pre, enn_view cs, enn_view hu, enn_view dhs,
                                       enn_view dpre, enn_view dhu, enn_view dc)
{
    const char *op = "rnn_recurrence_backward";
    if (!s || !s->T || !s->B || !s->units)
        return enn_error(ENN_ERROR_SHAPE, "%s: T = %u, B = %u, units = %u", op, s ? s->T : 0, s ? s->B : 0,
                         s ? s->units : 0);
    uint32_t u = s->units, w = gates(s->cell) * u;
    if (!enn_rnn_recurrence_available(enn_recorder_context(rec), s, U))
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: no fused recurrence for T = %u, B = %u, units = %u here", op,
                         s->T, s->B, u);
    /* The products read U^T: rows of it combined, as the forward's combine rows of U
     * (dot products along the rows of U measured 15-30% slower). */
    ENN_TRY(transpose(rec, op, U, Ut, u, w));
    U = Ut;
    uint64_t bh = seq_bytes(s, s->T + 1, s->slab_u, u), bw = seq_bytes(s, s->T, s->slab_w, w);
    const operand dhs_rw = {"dhs", dhs, bh, ENN_ACCESS_READ_WRITE, 1};
    if (s->cell == ENN_RNN_CELL_SIMPLE) {
        /* dpre is read back by the products. */
        const operand ops[] = {dhs_rw, {"dpre", dpre, bw, ENN_ACCESS_READ_WRITE, 1},
                               {"hs", hs, bh, ENN_ACCESS_READ, 0}};
        return launch(rec, op, "rnn_recurrence_cpu_simple_backward", s, U, ops, 3);
    }
    if (s->cell == ENN_RNN_CELL_LSTM) {
        const operand ops[] = {dhs_rw, {"dpre", dpre, bw, ENN_ACCESS_READ_WRITE, 1},
                               {"pre", pre, bw, ENN_ACCESS_READ, 0}, {"cs", cs, bh, ENN_ACCESS_READ, 0},
                               {"dc", dc, (uint64_t)s->B * u * 4, ENN_ACCESS_READ_WRITE, 1}};
        return launch(rec, op, "rnn_recurrence_cpu_lstm_backward", s, U, ops, 5);
    }
    const operand ops[] = {dhs_rw, {"dpre", dpre, bw, ENN_ACCESS_WRITE, 1}, {"hs", hs, bh, ENN_ACCESS_READ, 0},
                           {"pre", pre, bw, ENN_ACCESS_READ, 0}, {"hu", hu, bw, ENN_ACCESS_READ, 0},
                           {"dhu", dhu, bw, ENN_ACCESS_READ_WRITE, 1}};
    return launch(rec, op, "rnn_recurrence_cpu_gru_backward", s, U, ops, 6);
}
