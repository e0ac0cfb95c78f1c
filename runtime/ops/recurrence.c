/* Launchers of shaders/enn_recurrence.comp and, on CPU devices, enn_recurrence_cpu.comp. */
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
 * per row in the layer-norm sums; cpu: the kernels of enn_recurrence_cpu.comp. */
typedef struct plan {
    uint32_t vw, local, rows, lanes, kparts, kparts_u;
    int cpu;
} plan;

/* enn_recurrence_cpu.comp's register block spells out this many rows, and its workgroup
 * has as many invocations (one per row in the layer norm). */
#define CPU_ROWS 8

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

/* CPU devices read the weights as vec4 texels of uniform texel buffers (the shader's
 * TEXEL_W): llvmpipe gathers those, where a storage-buffer load is a per-lane loop. Needs
 * vec4 rows, the format, views the device allows, and not ENN_DISABLE_TEXEL_BUFFERS. */
static int texel_weights(const enn_context *ctx, const enn_recurrence_shape *s, enn_view W_uh, enn_view W_o)
{
    const enn_capabilities *c = &ctx->caps;
    uint32_t align = c->min_texel_buffer_offset_alignment ? c->min_texel_buffer_offset_alignment : 1;
    return c->device_type == ENN_DEVICE_CPU && s->h % 4 == 0 && c->texel_buffer_f32 &&
           (uint64_t)3 * s->h * s->h / 4 <= c->max_texel_buffer_elements && W_uh.offset % align == 0 &&
           W_o.offset % align == 0;
}

/* enn_recurrence_cpu.comp (CPU devices): no shared memory, the sequences the products read
 * back bound as storage texel buffers, every read-only operand a uniform texel buffer,
 * 4 column groups of every row per invocation. Needs texel weights, storage texel
 * buffers (not ENN_DISABLE_TEXEL_BUFFERS either) and the texel bindings' bytes within
 * the device's texel count. Measured on lavapipe at T=28, B=128, h=128 against the
 * tv4 kernels (process CPU time, interleaved runs): forward 119-122 -> 35-38 ms,
 * backward 125-130 -> 40-43 ms. */
static int cpu_kernel_allowed(const enn_context *ctx, const enn_recurrence_shape *s, enn_view W_uh, enn_view W_o,
                              const uint64_t *texel_bytes, uint32_t n)
{
    if (!texel_weights(ctx, s, W_uh, W_o) || !ctx->caps.storage_texel_buffer_f32) return 0;
    for (uint32_t i = 0; i < n; i++)
        if (texel_bytes[i] / 16 > ctx->caps.max_texel_buffer_elements) return 0;
    return 1;
}

/* cpu_kernel: the device and operands allow enn_recurrence_cpu.comp (cpu_kernel_allowed). */
static enn_status make_plan(const enn_context *ctx, const enn_recurrence_shape *s, const char *op, int cpu_kernel,
                            plan *p)
{
    int cpu = ctx->caps.device_type == ENN_DEVICE_CPU;
    p->vw = s->h % 4 == 0 ? 4 : 1;
    p->cpu = 0;
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
    if (cpu_kernel && rows <= CPU_ROWS && enn_ops_local_size(ctx, CPU_ROWS, 0) >= rows) {
        /* No shared memory: nothing to shrink. */
        *p = (plan){.vw = 4, .local = enn_ops_local_size(ctx, CPU_ROWS, 0), .rows = rows, .lanes = 1, .kparts = 1,
                    .kparts_u = 1, .cpu = 1};
        return ENN_OK;
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
    /* The sequences' texel counts as with dense slabs (u's is the largest). */
    uint64_t u_bytes = (uint64_t)s->T * s->Bp * 3 * s->h * 4;
    plan p;
    int cpu_kernel = cpu_kernel_allowed(ctx, s, (enn_view){0}, (enn_view){0}, &u_bytes, 1);
    return make_plan(ctx, s, "enn_recurrence_rows_per_group", cpu_kernel, &p) == ENN_OK ? p.rows : 0;
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

/* The kernel a dispatch runs, and which of its 10 bindings are (RGBA32F) texel buffers. */
typedef struct kernel {
    const char *name;
    uint32_t texel_mask;         /* every texel binding */
    uint32_t storage_mask;       /* those of them that are storage texel buffers */
} kernel;

static kernel pick_kernel(int backward, int texel, const plan *p)
{
    /* cpu forward: 0-4 read, 5-7 (u, hs, hp) storage; backward: 0-4 read, 7-9 (dhs,
     * dhp, du) storage. The other kernels: the weights (0, 1) with TEXEL_W. */
    if (p->cpu)
        return backward ? (kernel){"enn_recurrence_cpu_backward", 0x39fu, 0x380u}
                        : (kernel){"enn_recurrence_cpu", 0xffu, 0xe0u};
    if (texel) return (kernel){backward ? "enn_recurrence_backward_tv4" : "enn_recurrence_tv4", 3u, 0};
    if (p->vw == 4) return (kernel){backward ? "enn_recurrence_backward_v4" : "enn_recurrence_v4", 0, 0};
    return (kernel){backward ? "enn_recurrence_backward" : "enn_recurrence", 0, 0};
}

static enn_status get_pipeline(enn_recorder *rec, const kernel *k, const enn_recurrence_shape *s, const plan *p,
                               uint32_t push_size, const enn_pipeline **out)
{
    const uint32_t spec[9] = {p->local, 1, 1, p->rows, s->h, s->layer_norm ? 1u : 0u, p->lanes, p->kparts,
                              p->kparts_u};
    VkFormat formats[10];
    for (uint32_t i = 0; i < 10; i++)
        formats[i] = k->texel_mask >> i & 1u ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_UNDEFINED;
    enn_pipeline_desc d = {.shader = k->name, .num_buffers = 10, .push_size = push_size, .spec = spec, .spec_count = 9,
                           .texel_formats = k->texel_mask ? formats : NULL, .storage_texel_mask = k->storage_mask};
    return enn_pipeline_get(enn_recorder_context(rec), &d, out);
}

enn_status enn_recurrence_forward(enn_recorder *rec, const enn_recurrence_shape *s, enn_recurrence_seq u,
                                  enn_recurrence_seq hs, enn_recurrence_seq hp, enn_view mean, enn_view rstd,
                                  enn_view W_uh, enn_view W_o, enn_view b_o, enn_view gain, enn_view bias)
{
    const char *op = "recurrence_forward";
    ENN_TRY(check_shape(s, op));
    const enn_context *ctx = enn_recorder_context(rec);
    uint32_t h = s->h, vw = h % 4 == 0 ? 4 : 1;
    uint64_t bw = (uint64_t)h * 3 * h * 4, bv = (uint64_t)h * 4, bu, bhs, bhp = 0;
    uint64_t bstat = ((uint64_t)(s->T - 1) * s->Bp + s->B) * 4;
    forward_push push = {.B = s->B, .Bp = s->Bp, .T = s->T, .eps = s->eps};
    ENN_TRY(check_seq(ctx, op, "u", u, s, s->T, 3 * h, vw, &bu, &push.slab_u));
    ENN_TRY(check_seq(ctx, op, "hs", hs, s, s->T + 1, h, vw, &bhs, &push.slab_hs));
    ENN_TRY(enn_ops_check_view(op, "W_uh", W_uh, bw));
    ENN_TRY(enn_ops_check_view(op, "W_o", W_o, bw));
    ENN_TRY(enn_ops_check_view(op, "b_o", b_o, bv));
    /* Bindings the layer-norm-free kernel never touches: one vector of W_o for the
     * readonly ones, the recorder's unused binding for those the shader may write. */
    enn_binding unused = enn_bind(W_o, 4 * vw, ENN_ACCESS_READ), unused_out;
    ENN_TRY(enn_record_unused_binding(rec, &unused_out));
    enn_binding b[10] = {enn_bind(W_uh, bw, ENN_ACCESS_READ), enn_bind(W_o, bw, ENN_ACCESS_READ),
                         enn_bind(b_o, bv, ENN_ACCESS_READ),  unused,
                         unused,                              enn_bind(u.view, bu, ENN_ACCESS_READ_WRITE),
                         enn_bind(hs.view, bhs, ENN_ACCESS_READ_WRITE), unused_out,
                         unused_out,                          unused_out};
    if (s->layer_norm) {
        ENN_TRY(check_seq(ctx, op, "hp", hp, s, s->T, h, vw, &bhp, &push.slab_hp));
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
    const uint64_t texel_bytes[] = {bu, bhs, bhp};
    plan p;
    ENN_TRY(make_plan(ctx, s, op, cpu_kernel_allowed(ctx, s, W_uh, W_o, texel_bytes, 3), &p));
    if (p.cpu && s->layer_norm) b[7].access = ENN_ACCESS_READ_WRITE; /* hp: read back by the layer norm */
    const enn_pipeline *pipe;
    kernel k = pick_kernel(0, texel_weights(ctx, s, W_uh, W_o), &p);
    ENN_TRY(get_pipeline(rec, &k, s, &p, sizeof push, &pipe));
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
    uint32_t h = s->h, vw = h % 4 == 0 ? 4 : 1;
    uint64_t bw = (uint64_t)h * 3 * h * 4, bv = (uint64_t)h * 4, bdhs, bdhp, bdu, bu, bact;
    uint64_t bstat = ((uint64_t)(s->T - 1) * s->Bp + s->B) * 4;
    backward_push push = {.B = s->B, .Bp = s->Bp, .T = s->T};
    ENN_TRY(check_seq(ctx, op, "dhs", dhs, s, s->T + 1, h, vw, &bdhs, &push.slab_dhs));
    ENN_TRY(check_seq(ctx, op, "dhp", dhp, s, s->T, h, vw, &bdhp, &push.slab_dhp));
    ENN_TRY(check_seq(ctx, op, "du", du, s, s->T, 3 * h, vw, &bdu, &push.slab_du));
    ENN_TRY(check_seq(ctx, op, "u", u, s, s->T, 3 * h, vw, &bu, &push.slab_u));
    ENN_TRY(enn_ops_check_view(op, "W_uh", W_uh, bw));
    ENN_TRY(enn_ops_check_view(op, "W_o", W_o, bw));
    /* The output ReLU's mask comes from hp_t with layer norm, else from h_{t+1}: hs from
     * its slab 1 on. */
    enn_recurrence_seq act = hp;
    if (!s->layer_norm) act = (enn_recurrence_seq){enn_view_at(hs.view.buf, hs.view.offset + hs.slab), hs.slab};
    if (!act.view.buf) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", op, s->layer_norm ? "hp" : "hs");
    ENN_TRY(check_seq(ctx, op, s->layer_norm ? "hp" : "hs", act, s, s->T, h, vw, &bact, &push.slab_act));
    enn_binding unused = enn_bind(W_o, 4 * vw, ENN_ACCESS_READ);
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
    const uint64_t texel_bytes[] = {bdhs, bdhp, bdu, bu, bact};
    plan p;
    ENN_TRY(make_plan(ctx, s, op, cpu_kernel_allowed(ctx, s, W_uh, W_o, texel_bytes, 5), &p));
    if (p.cpu) b[8].access = b[9].access = ENN_ACCESS_READ_WRITE; /* dhp, du: read back by the products */
    const enn_pipeline *pipe;
    kernel k = pick_kernel(1, texel_weights(ctx, s, W_uh, W_o), &p);
    ENN_TRY(get_pipeline(rec, &k, s, &p, sizeof push, &pipe));
    uint32_t groups = enn_ops_row_groups(rec, (s->B + p.rows - 1) / p.rows);
    return enn_record_dispatch(rec, pipe, b, 10, &push, groups, 1, 1, op);
}
