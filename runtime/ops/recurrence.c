/* Launchers of shaders/enn_recurrence.comp. */
#include "ops/recurrence.h"
#include "ops/launch.h"

#define MAX_FORCED_ROWS 32

typedef struct forward_push {
    uint32_t B, Bp, T;
    uint32_t slab_u, slab_hs, slab_hp; /* VT units */
    float eps;
} forward_push;

typedef struct backward_push {
    uint32_t B, Bp, T;
    uint32_t slab_u, slab_act, slab_dhs, slab_dhp, slab_du; /* VT units */
} backward_push;

/* How one dispatch is laid out: vector width, workgroup size, rows per workgroup, lanes
 * per row in the layer-norm sums. */
typedef struct plan {
    uint32_t vw, local, rows, lanes, kparts, kparts_u;
} plan;

static uint32_t pow2_ceil(uint32_t x)
{
    uint32_t p = 1;
    while (p < x) p *= 2;
    return p;
}

static uint64_t shared_bytes(uint32_t h, uint32_t rows, uint32_t local, uint32_t vw, int split)
{
    /* the rows' h- and 3h-wide vectors, the vec2 reduction scratch and the k-split partial sums */
    return (uint64_t)rows * 4 * h * 4 + (uint64_t)local * 8 + (split ? (uint64_t)local * rows * vw * 4 : 0);
}

static enn_status make_plan(const enn_context *ctx, const enn_recurrence_shape *s, const char *op, plan *p)
{
    int cpu = ctx->caps.device_type == ENN_DEVICE_CPU;
    p->vw = s->h % 4 == 0 ? 4 : 1;
    /* Threads own the 3h / vw column groups of the widest product; CPU devices run a
     * workgroup's lanes as loops of one thread, so fewer, busier lanes there. */
    uint32_t lo = cpu ? 8 : 32, hi = cpu ? 64 : 256;
    if (!cpu && ctx->caps.subgroup_size > lo) lo = ctx->caps.subgroup_size;
    /* GPUs: twice the widest product's columns, the rest splitting the sums (kparts). */
    uint32_t want = pow2_ceil(3 * s->h / p->vw) * (cpu ? 1 : 2);
    want = want < lo ? lo : want > hi ? hi : want;
    uint32_t rows = s->rows_per_group;
    if (rows > MAX_FORCED_ROWS)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %u rows per workgroup (at most %d)", op, rows, MAX_FORCED_ROWS);
    if (!rows) {
        /* CPU: each loaded weight serves 8 rows, and two cores need few workgroups. GPU:
         * more workgroups beat weight reuse until there are about 128 of them. */
        rows = cpu ? 8 : s->B >= 512 ? 4 : s->B >= 256 ? 2 : 1;
        if (rows > pow2_ceil(s->B)) rows = pow2_ceil(s->B);
    }
    if (want < pow2_ceil(rows)) want = pow2_ceil(rows);
    p->local = enn_ops_local_size(ctx, want, 0);
    if (p->local < rows)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %u rows per workgroup need a workgroup of %u invocations", op, rows,
                         pow2_ceil(rows));
    if (!s->rows_per_group)
        while (rows > 1 && shared_bytes(s->h, rows, p->local, p->vw, !cpu) > ctx->caps.max_shared_memory) rows--;
    if (shared_bytes(s->h, rows, p->local, p->vw, !cpu) > ctx->caps.max_shared_memory)
        return enn_error(ENN_ERROR_UNSUPPORTED,
                         "%s: h = %u with %u rows per workgroup needs %llu bytes of shared memory; %s has %u", op, s->h,
                         rows, (unsigned long long)shared_bytes(s->h, rows, p->local, p->vw, !cpu), ctx->caps.device_name,
                         ctx->caps.max_shared_memory);
    p->rows = rows;
    /* GPUs: threads the h-wide products' columns leave idle split those sums' k-range. */
    uint32_t columns = s->h / p->vw;
    p->kparts = !cpu && p->local >= 2 * columns ? p->local / columns : 1;
    p->kparts_u = !cpu && p->local >= 2 * 3 * columns ? p->local / (3 * columns) : 1;
    p->lanes = 1;
    while (p->lanes * 2 * rows <= p->local) p->lanes *= 2;
    return ENN_OK;
}

uint32_t enn_recurrence_rows_per_group(const enn_context *ctx, const enn_recurrence_shape *s)
{
    plan p;
    return make_plan(ctx, s, "enn_recurrence_rows_per_group", &p) == ENN_OK ? p.rows : 0;
}

static enn_status check_shape(const enn_recurrence_shape *s, const char *op)
{
    if (!s) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no shape", op);
    if (!s->T || !s->B || !s->h || s->B > s->Bp)
        return enn_error(ENN_ERROR_SHAPE, "%s: T = %u, B = %u, Bp = %u, h = %u (need T, B, h >= 1 and B <= Bp)", op,
                         s->T, s->B, s->Bp, s->h);
    if (s->h > 0x10000000u || (uint64_t)s->T * s->Bp > 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: T = %u, Bp = %u, h = %u is too large", op, s->T, s->Bp, s->h);
    if (s->layer_norm && !(s->eps >= 0.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: eps = %g", op, s->eps);
    return ENN_OK;
}

/* Checks a sequence of `steps` slabs of [Bp, width] rows; *bytes = the range the kernel
 * touches (rows 0..B-1 of every slab) and *slab_vt = the slab in units of vw floats. */
static enn_status check_seq(const enn_context *ctx, const char *op, const char *name, enn_recurrence_seq q,
                            const enn_recurrence_shape *s, uint32_t steps, uint32_t width, uint32_t vw,
                            uint64_t *bytes, uint32_t *slab_vt)
{
    uint64_t row_bytes = (uint64_t)width * 4;
    if (q.slab % ENN_VIEW_ALIGN || (steps > 1 && q.slab < s->Bp * row_bytes))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT,
                         "%s: %s slab of %llu bytes is not a multiple of %d holding %u rows of %u floats", op, name,
                         (unsigned long long)q.slab, ENN_VIEW_ALIGN, s->Bp, width);
    *bytes = (uint64_t)(steps - 1) * q.slab + s->B * row_bytes;
    ENN_TRY(enn_ops_check_view(op, name, q.view, *bytes));
    if (*bytes > ctx->caps.max_storage_buffer_range || *bytes > 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: %s spans %llu bytes, more than one binding may cover (%llu)", op, name,
                         (unsigned long long)*bytes, (unsigned long long)ctx->caps.max_storage_buffer_range);
    *slab_vt = (uint32_t)(q.slab / (4 * vw));
    return ENN_OK;
}

/* CPU devices read the weights as vec4 texels of uniform texel buffers (the shader's
 * TEXEL_W): llvmpipe gathers those, where a storage-buffer load is a per-lane loop. Needs
 * vec4 rows, the format, views the device allows, and not ENN_DISABLE_TEXEL_BUFFERS. */
static int texel_weights(const enn_context *ctx, const enn_recurrence_shape *s, const plan *p, enn_view W_uh,
                         enn_view W_o)
{
    const enn_capabilities *c = &ctx->caps;
    uint32_t align = c->min_texel_buffer_offset_alignment ? c->min_texel_buffer_offset_alignment : 1;
    return c->device_type == ENN_DEVICE_CPU && p->vw == 4 && c->texel_buffer_f32 &&
           (uint64_t)3 * s->h * s->h / 4 <= c->max_texel_buffer_elements && W_uh.offset % align == 0 &&
           W_o.offset % align == 0;
}

/* CPU devices with texel weights run the register-blocked _cg kernels where the rows fit
 * their block (spelled out for BLOCK_ROWS rows): each invocation owns 4 column groups of
 * every row, so the shared-memory loads of x, each a loop over the lanes on llvmpipe,
 * serve 4 times the FMAs (measured on lavapipe at T=28, B=128, h=128: forward 121 -> 71
 * ms, backward 132 -> 82 ms of CPU time). Their workgroup is one 8-wide SIMD group of
 * invocations with one lane per row in the layer-norm sums: every stage and barrier
 * steps through fewer idle lanes (-> 57 and 65 ms against 64 invocations). */
#define BLOCK_ROWS 8
static int blocked_plan(const enn_context *ctx, int texel, plan *p)
{
    uint32_t local = enn_ops_local_size(ctx, BLOCK_ROWS, 0);
    if (!texel || p->rows > BLOCK_ROWS || local < p->rows) return 0;
    p->local = local;
    p->lanes = 1;
    while (p->lanes * 2 * p->rows <= p->local) p->lanes *= 2;
    return 1;
}

static const char *kernel_name(int backward, int texel, int blocked, uint32_t vw)
{
    if (blocked) return backward ? "enn_recurrence_backward_tv4_cg" : "enn_recurrence_tv4_cg";
    if (texel) return backward ? "enn_recurrence_backward_tv4" : "enn_recurrence_tv4";
    if (vw == 4) return backward ? "enn_recurrence_backward_v4" : "enn_recurrence_v4";
    return backward ? "enn_recurrence_backward" : "enn_recurrence";
}

static enn_status get_pipeline(enn_recorder *rec, const char *name, const enn_recurrence_shape *s, const plan *p,
                               int texel, uint32_t push_size, const enn_pipeline **out)
{
    const uint32_t spec[9] = {p->local, 1, 1, p->rows, s->h, s->layer_norm ? 1u : 0u, p->lanes, p->kparts,
                              p->kparts_u};
    VkFormat formats[10] = {VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_R32G32B32A32_SFLOAT};  /* the rest UNDEFINED */
    enn_pipeline_desc d = {.shader = name, .num_buffers = 10, .push_size = push_size, .spec = spec, .spec_count = 9,
                           .texel_formats = texel ? formats : NULL};
    return enn_pipeline_get(enn_recorder_context(rec), &d, out);
}

enn_status enn_recurrence_forward(enn_recorder *rec, const enn_recurrence_shape *s, enn_recurrence_seq u,
                                  enn_recurrence_seq hs, enn_recurrence_seq hp, enn_view mean, enn_view rstd,
                                  enn_view W_uh, enn_view W_o, enn_view b_o, enn_view gain, enn_view bias)
{
    const char *op = "recurrence_forward";
    ENN_TRY(check_shape(s, op));
    const enn_context *ctx = enn_recorder_context(rec);
    plan p;
    ENN_TRY(make_plan(ctx, s, op, &p));
    uint32_t h = s->h;
    uint64_t bw = (uint64_t)h * 3 * h * 4, bv = (uint64_t)h * 4, bu, bhs, bhp = 0;
    uint64_t bstat = ((uint64_t)(s->T - 1) * s->Bp + s->B) * 4;
    forward_push push = {.B = s->B, .Bp = s->Bp, .T = s->T, .eps = s->eps};
    ENN_TRY(check_seq(ctx, op, "u", u, s, s->T, 3 * h, p.vw, &bu, &push.slab_u));
    ENN_TRY(check_seq(ctx, op, "hs", hs, s, s->T + 1, h, p.vw, &bhs, &push.slab_hs));
    ENN_TRY(enn_ops_check_view(op, "W_uh", W_uh, bw));
    ENN_TRY(enn_ops_check_view(op, "W_o", W_o, bw));
    ENN_TRY(enn_ops_check_view(op, "b_o", b_o, bv));
    /* Bindings the layer-norm-free kernel never touches: one vector of W_o for the
     * readonly ones, the recorder's unused binding for those the shader may write. */
    enn_binding unused = enn_bind(W_o, 4 * p.vw, ENN_ACCESS_READ), unused_out;
    ENN_TRY(enn_record_unused_binding(rec, &unused_out));
    enn_binding b[10] = {enn_bind(W_uh, bw, ENN_ACCESS_READ), enn_bind(W_o, bw, ENN_ACCESS_READ),
                         enn_bind(b_o, bv, ENN_ACCESS_READ),  unused,
                         unused,                              enn_bind(u.view, bu, ENN_ACCESS_READ_WRITE),
                         enn_bind(hs.view, bhs, ENN_ACCESS_READ_WRITE), unused_out,
                         unused_out,                          unused_out};
    if (s->layer_norm) {
        ENN_TRY(check_seq(ctx, op, "hp", hp, s, s->T, h, p.vw, &bhp, &push.slab_hp));
        ENN_TRY(enn_ops_check_view(op, "mean", mean, bstat));
        ENN_TRY(enn_ops_check_view(op, "rstd", rstd, bstat));
        ENN_TRY(enn_ops_check_view(op, "gain", gain, bv));
        ENN_TRY(enn_ops_check_view(op, "bias", bias, bv));
        b[3] = enn_bind(gain, bv, ENN_ACCESS_READ);
        b[4] = enn_bind(bias, bv, ENN_ACCESS_READ);
        b[7] = enn_bind(hp.view, bhp, ENN_ACCESS_WRITE);
        b[8] = enn_bind(mean, bstat, ENN_ACCESS_WRITE);
        b[9] = enn_bind(rstd, bstat, ENN_ACCESS_WRITE);
    }
    const enn_pipeline *pipe;
    int texel = texel_weights(ctx, s, &p, W_uh, W_o), blocked = blocked_plan(ctx, texel, &p);
    ENN_TRY(get_pipeline(rec, kernel_name(0, texel, blocked, p.vw), s, &p, texel, sizeof push, &pipe));
    uint32_t groups = enn_ops_row_groups(rec, (s->B + p.rows - 1) / p.rows);
    return enn_record_dispatch(rec, pipe, b, 10, &push, groups, 1, 1, op);
}

enn_status enn_recurrence_backward(enn_recorder *rec, const enn_recurrence_shape *s, enn_recurrence_seq dhs,
                                   enn_recurrence_seq dhp, enn_recurrence_seq du, enn_recurrence_seq u,
                                   enn_recurrence_seq hs, enn_recurrence_seq hp, enn_view mean, enn_view rstd,
                                   enn_view W_uh, enn_view W_o, enn_view gain)
{
    const char *op = "recurrence_backward";
    ENN_TRY(check_shape(s, op));
    const enn_context *ctx = enn_recorder_context(rec);
    plan p;
    ENN_TRY(make_plan(ctx, s, op, &p));
    uint32_t h = s->h;
    uint64_t bw = (uint64_t)h * 3 * h * 4, bv = (uint64_t)h * 4, bdhs, bdhp, bdu, bu, bact;
    uint64_t bstat = ((uint64_t)(s->T - 1) * s->Bp + s->B) * 4;
    backward_push push = {.B = s->B, .Bp = s->Bp, .T = s->T};
    ENN_TRY(check_seq(ctx, op, "dhs", dhs, s, s->T + 1, h, p.vw, &bdhs, &push.slab_dhs));
    ENN_TRY(check_seq(ctx, op, "dhp", dhp, s, s->T, h, p.vw, &bdhp, &push.slab_dhp));
    ENN_TRY(check_seq(ctx, op, "du", du, s, s->T, 3 * h, p.vw, &bdu, &push.slab_du));
    ENN_TRY(check_seq(ctx, op, "u", u, s, s->T, 3 * h, p.vw, &bu, &push.slab_u));
    ENN_TRY(enn_ops_check_view(op, "W_uh", W_uh, bw));
    ENN_TRY(enn_ops_check_view(op, "W_o", W_o, bw));
    /* The output ReLU's mask comes from hp_t with layer norm, else from h_{t+1}: hs from
     * its slab 1 on. */
    enn_recurrence_seq act = hp;
    if (!s->layer_norm) act = (enn_recurrence_seq){enn_view_at(hs.view.buf, hs.view.offset + hs.slab), hs.slab};
    if (!act.view.buf) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", op, s->layer_norm ? "hp" : "hs");
    ENN_TRY(check_seq(ctx, op, s->layer_norm ? "hp" : "hs", act, s, s->T, h, p.vw, &bact, &push.slab_act));
    enn_binding unused = enn_bind(W_o, 4 * p.vw, ENN_ACCESS_READ);
    enn_binding b[10] = {enn_bind(W_uh, bw, ENN_ACCESS_READ),
                         enn_bind(W_o, bw, ENN_ACCESS_READ),
                         unused,
                         enn_bind(u.view, bu, ENN_ACCESS_READ),
                         enn_bind(act.view, bact, ENN_ACCESS_READ),
                         unused,
                         unused,
                         enn_bind(dhs.view, bdhs, ENN_ACCESS_READ_WRITE),
                         enn_bind(dhp.view, bdhp, ENN_ACCESS_WRITE),
                         enn_bind(du.view, bdu, ENN_ACCESS_WRITE)};
    if (s->layer_norm) {
        ENN_TRY(enn_ops_check_view(op, "mean", mean, bstat));
        ENN_TRY(enn_ops_check_view(op, "rstd", rstd, bstat));
        ENN_TRY(enn_ops_check_view(op, "gain", gain, bv));
        b[2] = enn_bind(gain, bv, ENN_ACCESS_READ);
        b[5] = enn_bind(mean, bstat, ENN_ACCESS_READ);
        b[6] = enn_bind(rstd, bstat, ENN_ACCESS_READ);
    }
    const enn_pipeline *pipe;
    int texel = texel_weights(ctx, s, &p, W_uh, W_o), blocked = blocked_plan(ctx, texel, &p);
    ENN_TRY(get_pipeline(rec, kernel_name(1, texel, blocked, p.vw), s, &p, texel, sizeof push, &pipe));
    uint32_t groups = enn_ops_row_groups(rec, (s->B + p.rows - 1) / p.rows);
    return enn_record_dispatch(rec, pipe, b, 10, &push, groups, 1, 1, op);
}
