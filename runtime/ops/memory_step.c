/* Launcher of shaders/memory_step.comp (and, for a shared trace, hebbian_trace). */
#include "ops/memory_step.h"
#include "ops/launch.h"

#include <string.h>

#define WIDE_LOCAL 256 /* GPUs: the row kernels' workgroup */

#include "ops/cosine_attention.h"

#define STEP_LOCAL 64

/* GPUs run the row kernels one row per WIDE_LOCAL-wide workgroup: slot_threads threads
 * per memory slot in the per-slot sums, `vectors` (a power of two >= the vectors of h, at
 * most the workgroup) threads per part of the slot range in the per-vector sums. */
static int wide_plan(const enn_context *ctx, enn_memory_shape s, uint32_t *slot_threads, uint32_t *vectors)
{
    if (ctx->caps.device_type == ENN_DEVICE_CPU || enn_ops_local_size(ctx, WIDE_LOCAL, 0) != WIDE_LOCAL) return 0;
    uint32_t hv = s.h % 4 == 0 ? s.h / 4 : s.h;
    *slot_threads = 1;
    while (*slot_threads * s.N < WIDE_LOCAL && *slot_threads < 16) *slot_threads *= 2;
    *vectors = 1;
    while (*vectors < hv && *vectors < WIDE_LOCAL) *vectors *= 2;
    return 1;
}

/* CPU devices read the row kernels' vector inputs as vec4 texels where the device has
 * RGBA32F uniform texel buffers (not with ENN_DISABLE_TEXEL_BUFFERS), and the backward's
 * a and workspace as R32F texels (a format every device views); views are 256-byte
 * aligned, which covers any offset alignment lavapipe asks for. */
static int texel_inputs(const enn_context *ctx, enn_memory_shape s, int vec4, uint32_t rows)
{
    const enn_capabilities *c = &ctx->caps;
    uint64_t texels = (uint64_t)(s.per_sample ? s.B : 1) * s.N * s.h / 4;  /* the largest view: H */
    return c->device_type == ENN_DEVICE_CPU && vec4 && rows == 8 && c->texel_buffer_f32 &&
           c->min_texel_buffer_offset_alignment <= ENN_VIEW_ALIGN && texels <= c->max_texel_buffer_elements &&
           (uint64_t)s.B * s.h / 4 <= c->max_texel_buffer_elements &&
           (uint64_t)2 * s.B * s.N + s.B <= c->max_texel_buffer_elements;  /* the workspace, as floats */
}

/* The per-sample backward's texel kernel with each (row, slot)'s values in one vec4 of shared
 * memory (memory_step_backward_tv4r8_ps; not with ENN_DISABLE_PACKED_SLOTS): 8 rows of
 * max_n vec4s and two floats per row. */
static int per_sample_slots(const enn_context *ctx, enn_memory_shape s, uint32_t max_n)
{
    return s.per_sample && ((uint64_t)4 * 8 * max_n + 2 * 8) * 4 <= ctx->caps.max_shared_memory &&
           !ctx->env.disable_packed_slots;
}

/* The shape, temperature and Hebbian parameters both passes take (hebbian NULL: not checked). */
static enn_status check_step(const char *op, enn_memory_shape s, float tau_e, const enn_hebbian_params *hp)
{
    if (s.B == 0 || s.N == 0 || s.h == 0)
        return enn_error(ENN_ERROR_SHAPE, "%s: empty shape B=%u N=%u h=%u", op, s.B, s.N, s.h);
    if ((uint64_t)s.B * s.N * s.h >= 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: B*N*h = %u*%u*%u passes 2^32 elements", op, s.B, s.N, s.h);
    if (!(tau_e > 0.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: tau_e = %g must be positive", op, tau_e);
    if (!hp) return ENN_OK;
    if (!(hp->eta >= 0.0f && hp->eta <= 1.0f) || !(hp->clip > 0.0f))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: eta = %g, clip = %g", op, hp->eta, hp->clip);
    if (hp->noise.mode != ENN_NOISE_OFF && hp->noise.mode != ENN_NOISE_PHILOX && hp->noise.mode != ENN_NOISE_BUFFER)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: unknown noise mode %d", op, (int)hp->noise.mode);
    return ENN_OK;
}

/* Which kernel a texel pipeline is for: the forward row kernel, the backward row kernel,
 * the backward slot kernel. */
enum texel_kernel { TEXEL_FORWARD, TEXEL_BACKWARD_ROWS, TEXEL_BACKWARD_SLOTS };

/* A row or slot kernel's pipeline on a CPU device with the texel inputs: bindings 0, 1, 2
 * (z, M, H) as vec4 texels; the backward kernels also 4, 5 and 14 (dm, g, dM_samples) as
 * vec4 texels and 3 (a) as float texels, the slot kernel 6 (the workspace) as float
 * texels too. */
static enn_status texel_pipeline(enn_recorder *rec, const char *shader, uint32_t num_buffers, uint32_t push_size,
                                 const uint32_t *spec, uint32_t spec_count, enum texel_kernel kind,
                                 const enn_pipeline **out)
{
    VkFormat formats[15] = {0};
    formats[0] = formats[1] = formats[2] = VK_FORMAT_R32G32B32A32_SFLOAT;
    if (kind != TEXEL_FORWARD) {
        formats[4] = formats[5] = formats[14] = VK_FORMAT_R32G32B32A32_SFLOAT;
        formats[3] = VK_FORMAT_R32_SFLOAT;
    }
    if (kind == TEXEL_BACKWARD_SLOTS) formats[6] = VK_FORMAT_R32_SFLOAT;
    enn_pipeline_desc pd = {.shader = shader, .num_buffers = num_buffers, .push_size = push_size, .spec = spec,
                            .spec_count = spec_count, .texel_formats = formats};
    return enn_pipeline_get(enn_recorder_context(rec), &pd, out);
}

typedef struct step_push {
    uint32_t B, N, h, per_sample;
    uint32_t seed[2], stream[2];
    uint32_t noise_mode;
    float inv_tau, alpha, decay, eta, sigma, clip;
} step_push;

enn_status enn_memory_step_forward(enn_recorder *rec, enn_memory_shape s, enn_view a, enn_view m, enn_view H_new,
                                   enn_view z, enn_view M, enn_view H, float alpha, float tau_e,
                                   const enn_hebbian_params *hp)
{
    const char *op = "memory_step_forward";
    if (!hp) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no Hebbian parameters", op);
    ENN_TRY(check_step(op, s, tau_e, hp));
    uint64_t bz = (uint64_t)s.B * s.h * 4, ba = (uint64_t)s.B * s.N * 4, bm = (uint64_t)s.N * s.h * 4;
    uint64_t bH = bm * (s.per_sample ? s.B : 1);
    ENN_TRY(enn_ops_check_view(op, "a", a, ba));
    ENN_TRY(enn_ops_check_view(op, "m", m, bz));
    ENN_TRY(enn_ops_check_view(op, "H_new", H_new, bH));
    ENN_TRY(enn_ops_check_view(op, "z", z, bz));
    ENN_TRY(enn_ops_check_view(op, "M", M, bm));
    ENN_TRY(enn_ops_check_view(op, "H", H, bH));
    int buffer_noise = hp->noise.mode == ENN_NOISE_BUFFER;
    if (buffer_noise) ENN_TRY(enn_ops_check_view(op, "noise buffer xi", hp->noise.xi, bH));
    if (H_new.buf == H.buf && H_new.offset < H.offset + bH && H.offset < H_new.offset + bH)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: H_new overlaps H", op);

    uint32_t max_n = 64;
    while (max_n < s.N) max_n *= 2;
    const enn_context *ctx = enn_recorder_context(rec);
    /* vec4 loads when rows of h are whole vectors; on a CPU device 8 batch rows per
     * workgroup (each loaded vector of M, H serves 8 rows; 2 cores need few groups), on
     * GPUs one row per workgroup (more workgroups). */
    int vec4 = s.h % 4 == 0;
    uint32_t rows = ctx->caps.device_type == ENN_DEVICE_CPU ? 8 : 1;
    if ((uint64_t)rows * (max_n + 1) * 4 > ctx->caps.max_shared_memory) rows = 1;
    if ((uint64_t)rows * (max_n + 1) * 4 > ctx->caps.max_shared_memory)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: N = %u memory slots do not fit the device's %u bytes of shared memory",
                         op, s.N, ctx->caps.max_shared_memory);
    static const char *const names[2][2] = {{"memory_step", "memory_step_r8"}, {"memory_step_v4", "memory_step_v4r8"}};
    const uint32_t spec[4] = {STEP_LOCAL, 1, 1, max_n};
    const enn_pipeline *p;
    uint32_t groups = (s.B + rows - 1) / rows;
    uint32_t slot_threads, vectors;
    if (wide_plan(ctx, s, &slot_threads, &vectors)) {
        /* GPUs: one row per 256-wide workgroup, its serial loops cut into parts. */
        const uint32_t wide_spec[6] = {WIDE_LOCAL, 1, 1, max_n, slot_threads, vectors};
        ENN_TRY(enn_ops_pipeline(rec, vec4 ? "memory_step_wide_v4" : "memory_step_wide", 7, sizeof(step_push),
                                 wide_spec, 6, &p));
        groups = s.B;
    } else if (texel_inputs(ctx, s, vec4, rows)) {
        /* CPU devices: z, M and H read as vec4 texels, 8 invocations that each take 8 slots
         * or 4 vectors at once (see the shader); a per-sample trace's Philox noise four
         * blocks at a time (the same values). */
        const uint32_t cpu_spec[7] = {8, 1, 1, max_n, 0, 0, (uint32_t)hp->noise.mode};
        int noise_blocks = s.per_sample && hp->noise.mode == ENN_NOISE_PHILOX && !ctx->env.disable_noise_blocks;
        const char *name = !noise_blocks                 ? "memory_step_tv4r8"
                           : ctx->enabled.shader_int64 ? "memory_step_tv4r8_nb_w64"
                                                       : "memory_step_tv4r8_nb";
        ENN_TRY(texel_pipeline(rec, name, 7, sizeof(step_push), cpu_spec, 7, TEXEL_FORWARD, &p));
    } else {
        ENN_TRY(enn_ops_pipeline(rec, names[vec4][rows == 8], 7, sizeof(step_push), spec, 4, &p));
    }
    step_push push = {.B = s.B, .N = s.N, .h = s.h, .per_sample = s.per_sample != 0,
                      .noise_mode = (uint32_t)hp->noise.mode, .inv_tau = 1.0f / tau_e, .alpha = alpha,
                      .decay = 1.0f - hp->eta, .eta = hp->eta, .sigma = hp->noise.sigma, .clip = hp->clip};
    enn_ops_split64(hp->noise.seed, push.seed);
    enn_ops_split64(hp->noise.stream, push.stream);
    /* In shared mode the kernel leaves H_new alone (hebbian_trace writes it next): the
     * recorder's unused binding stands in (one vector of H stands in for an unused xi). */
    enn_binding unused;
    ENN_TRY(enn_record_unused_binding(rec, &unused));
    uint64_t one = vec4 ? 16 : 4;
    enn_binding b[7] = {enn_bind(z, bz, ENN_ACCESS_READ), enn_bind(M, bm, ENN_ACCESS_READ),
                        enn_bind(H, bH, ENN_ACCESS_READ),
                        buffer_noise && s.per_sample ? enn_bind(hp->noise.xi, bH, ENN_ACCESS_READ)
                                                     : enn_bind(H, one, ENN_ACCESS_READ),
                        enn_bind(a, ba, ENN_ACCESS_WRITE), enn_bind(m, bz, ENN_ACCESS_WRITE),
                        s.per_sample ? enn_bind(H_new, bH, ENN_ACCESS_WRITE) : unused};
    ENN_TRY(enn_record_dispatch(rec, p, b, 7, &push, enn_ops_row_groups(rec, groups), 1, 1, op));
    if (s.per_sample) return ENN_OK;
    return enn_hebbian_trace_forward(rec, s, H_new, H, a, z, hp);
}

typedef struct backward_push {
    uint32_t B, N, h, per_sample;
    uint32_t seed[2], stream[2];
    uint32_t noise_mode, has_trace, has_prev;
    float inv_tau, alpha, decay, eta, sigma, clip, inv_batch, g_scale;
    uint32_t mean_parts;
} backward_push;

enn_status enn_memory_step_backward(enn_recorder *rec, enn_memory_shape s, const enn_memory_backward_step *st,
                                    float alpha, float tau_e)
{
    const char *op = "memory_step_backward";
    if (!st) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no arguments", op);
    const enn_hebbian_params *hp = &st->prev_hebbian;
    int trace = st->g.buf != NULL, prev = trace && st->prev_H.buf != NULL;
    ENN_TRY(check_step(op, s, tau_e, trace ? hp : NULL));
    uint64_t bz = (uint64_t)s.B * s.h * 4, ba = (uint64_t)s.B * s.N * 4, bm = (uint64_t)s.N * s.h * 4;
    uint64_t bH = bm * (s.per_sample ? s.B : 1), bws = enn_cosine_attention_workspace_bytes(s);
    ENN_TRY(enn_ops_check_view(op, "z", st->z, bz));
    ENN_TRY(enn_ops_check_view(op, "a", st->a, ba));
    ENN_TRY(enn_ops_check_view(op, "H", st->H, bH));
    ENN_TRY(enn_ops_check_view(op, "dm", st->dm, bz));
    ENN_TRY(enn_ops_check_view(op, "M", st->M, bm));
    ENN_TRY(enn_ops_check_view(op, "dz", st->dz, bz));
    if (s.per_sample) {
        ENN_TRY(enn_ops_check_view(op, "dM_samples", st->dM_samples, bH));
        ENN_TRY(enn_ops_check_view(op, "dM_samples_next", st->dM_samples_next, bH));
        if (st->dM_samples.buf == st->dM_samples_next.buf && st->dM_samples.offset < st->dM_samples_next.offset + bH &&
            st->dM_samples_next.offset < st->dM_samples.offset + bH)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: dM_samples_next overlaps dM_samples", op);
    } else {
        ENN_TRY(enn_ops_check_view(op, "dM", st->dM, bm));
    }
    ENN_TRY(enn_ops_check_view(op, "workspace", st->workspace, bws));
    int buffer_noise = prev && hp->noise.mode == ENN_NOISE_BUFFER;
    if (trace) {
        ENN_TRY(enn_ops_check_view(op, "g", st->g, bH));
        ENN_TRY(enn_ops_check_view(op, "g_prev", st->g_prev, bH));
        if (st->g.buf == st->g_prev.buf && st->g.offset < st->g_prev.offset + bH &&
            st->g_prev.offset < st->g.offset + bH)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: g_prev overlaps g", op);
    }
    if (prev) {
        ENN_TRY(enn_ops_check_view(op, "prev_z", st->prev_z, bz));
        ENN_TRY(enn_ops_check_view(op, "prev_a", st->prev_a, ba));
        ENN_TRY(enn_ops_check_view(op, "prev_H", st->prev_H, bH));
        if (buffer_noise) ENN_TRY(enn_ops_check_view(op, "noise buffer xi", hp->noise.xi, bH));
    }

    uint32_t max_n = 64;
    while (max_n < s.N) max_n *= 2;
    const enn_context *ctx = enn_recorder_context(rec);
    /* As the forward kernels: vec4 loads when rows of h are whole vectors; on a CPU device
     * 8 rows (slots) per workgroup, on GPUs one (more workgroups). */
    int vec4 = s.h % 4 == 0;
    uint32_t rows = ctx->caps.device_type == ENN_DEVICE_CPU ? 8 : 1;
    if (((uint64_t)3 * rows * max_n + 2 * rows) * 4 > ctx->caps.max_shared_memory) rows = 1;
    if (((uint64_t)3 * rows * max_n + 2 * rows) * 4 > ctx->caps.max_shared_memory)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: N = %u memory slots do not fit the device's %u bytes of shared memory",
                         op, s.N, ctx->caps.max_shared_memory);
    backward_push push = {.B = s.B, .N = s.N, .h = s.h, .per_sample = s.per_sample != 0,
                          .noise_mode = prev ? (uint32_t)hp->noise.mode : 0, .has_trace = (uint32_t)trace,
                          .has_prev = (uint32_t)prev, .inv_tau = 1.0f / tau_e, .alpha = alpha,
                          .decay = 1.0f - hp->eta, .eta = hp->eta, .sigma = hp->noise.sigma, .clip = hp->clip,
                          .inv_batch = 1.0f / (float)s.B,
                          .g_scale = s.per_sample ? hp->eta : hp->eta / (float)s.B,
                          .mean_parts = enn_hebbian_mean_parts(ctx, s)};
    enn_ops_split64(hp->noise.seed, push.seed);
    enn_ops_split64(hp->noise.stream, push.stream);
    const uint32_t spec[4] = {STEP_LOCAL, 1, 1, max_n};
    /* Both kernels bind the same 15 buffers; what a kernel does not use gets one vector of
     * z, read, where the shader declares it readonly, else the recorder's unused binding. */
    enn_binding none = enn_bind(st->z, vec4 ? 16 : 4, ENN_ACCESS_READ), unused;
    ENN_TRY(enn_record_unused_binding(rec, &unused));
    enn_binding b[15] = {
        enn_bind(st->z, bz, ENN_ACCESS_READ),
        enn_bind(st->M, bm, ENN_ACCESS_READ),
        enn_bind(st->H, bH, ENN_ACCESS_READ),
        enn_bind(st->a, ba, ENN_ACCESS_READ),
        enn_bind(st->dm, bz, ENN_ACCESS_READ),
        trace ? enn_bind(st->g, bH, ENN_ACCESS_READ) : none,
        enn_bind(st->workspace, bws, ENN_ACCESS_WRITE),
        enn_bind(st->dz, bz, ENN_ACCESS_READ_WRITE),
        prev ? enn_bind(st->prev_H, bH, ENN_ACCESS_READ) : none,
        prev ? enn_bind(st->prev_a, ba, ENN_ACCESS_READ) : none,
        prev ? enn_bind(st->prev_z, bz, ENN_ACCESS_READ) : none,
        buffer_noise ? enn_bind(hp->noise.xi, bH, ENN_ACCESS_READ) : none,
        trace && s.per_sample ? enn_bind(st->g_prev, bH, ENN_ACCESS_READ_WRITE) : unused,
        s.per_sample ? enn_bind(st->dM_samples_next, bH, ENN_ACCESS_WRITE) : unused,
        s.per_sample ? enn_bind(st->dM_samples, bH, ENN_ACCESS_READ) : none};
    static const char *const row_kernels[2][2] = {{"memory_step_backward", "memory_step_backward_r8"},
                                                  {"memory_step_backward_v4", "memory_step_backward_v4r8"}};
    const enn_pipeline *p;
    uint32_t slot_threads, vectors;
    if (wide_plan(ctx, s, &slot_threads, &vectors)) {
        /* GPUs: one row per 256-wide workgroup, its serial loops cut into parts. */
        const uint32_t wide_spec[6] = {WIDE_LOCAL, 1, 1, max_n, slot_threads, vectors};
        ENN_TRY(enn_ops_pipeline(rec, vec4 ? "memory_step_backward_wide_v4" : "memory_step_backward_wide", 15,
                                 sizeof push, wide_spec, 6, &p));
        ENN_TRY(enn_record_dispatch(rec, p, b, 15, &push, enn_ops_row_groups(rec, s.B), 1, 1,
                                    "memory_step_backward_rows"));
    } else if (texel_inputs(ctx, s, vec4, rows)) {
        /* CPU devices: z, M, H, dm and g read as vec4 texels, 8 invocations that each
         * take 8 slots or 4 vectors at once in shared mode (see the shader). */
        const uint32_t cpu_spec[8] = {8, 1, 1, max_n, 0, 0, push.noise_mode, push.has_trace};
        const char *name = !per_sample_slots(ctx, s, max_n) ? "memory_step_backward_tv4r8"
                           : ctx->enabled.shader_int64      ? "memory_step_backward_tv4r8_ps_w64"
                                                            : "memory_step_backward_tv4r8_ps";
        ENN_TRY(texel_pipeline(rec, name, 15, sizeof push, cpu_spec, 8, TEXEL_BACKWARD_ROWS, &p));
        ENN_TRY(enn_record_dispatch(rec, p, b, 15, &push, enn_ops_row_groups(rec, (s.B + rows - 1) / rows), 1, 1,
                                    "memory_step_backward_rows"));
    } else {
        ENN_TRY(enn_ops_pipeline(rec, row_kernels[vec4][rows == 8], 15, sizeof push, spec, 4, &p));
        ENN_TRY(enn_record_dispatch(rec, p, b, 15, &push, enn_ops_row_groups(rec, (s.B + rows - 1) / rows), 1, 1,
                                    "memory_step_backward_rows"));
    }
    if (s.per_sample) return ENN_OK;

    b[6] = enn_bind(st->workspace, bws, ENN_ACCESS_READ);
    b[7] = unused;
    b[12] = trace ? enn_bind(st->g_prev, bH, ENN_ACCESS_WRITE) : unused;
    b[13] = enn_bind(st->dM, bm, ENN_ACCESS_READ_WRITE);
    static const char *const slot_kernels[2][2] = {
        {"memory_step_backward_slots", "memory_step_backward_slots_r8"},
        {"memory_step_backward_slots_v4", "memory_step_backward_slots_v4r8"}};
    /* GPUs: a 256-wide workgroup per slot, PARTS threads per vector of h splitting the
     * batch sum; CPU devices: one thread per vector (PARTS = 1). */
    uint32_t local = STEP_LOCAL, parts = 1;
    if (ctx->caps.device_type != ENN_DEVICE_CPU) {
        local = enn_ops_local_size(ctx, 256, 0);
        uint32_t vectors = 1;
        while (vectors < s.h / (vec4 ? 4 : 1)) vectors *= 2;
        parts = local > vectors ? local / vectors : 1;
        if ((uint64_t)2 * local * rows * (vec4 ? 16 : 4) + 8 * rows > ctx->caps.max_shared_memory) local = STEP_LOCAL, parts = 1;
    }
    const uint32_t slot_spec[5] = {local, 1, 1, max_n, parts};
    if (parts == 1 && texel_inputs(ctx, s, vec4, rows)) {
        /* CPU devices: 8 invocations that each take 4 vectors of h (see the shader). */
        const uint32_t cpu_spec[8] = {8, 1, 1, max_n, 1, 0, push.noise_mode, push.has_trace};
        ENN_TRY(texel_pipeline(rec, "memory_step_backward_slots_tv4r8", 15, sizeof push, cpu_spec, 8,
                               TEXEL_BACKWARD_SLOTS, &p));
    } else {
        ENN_TRY(enn_ops_pipeline(rec, slot_kernels[vec4][rows == 8], 15, sizeof push, slot_spec, 5, &p));
    }
    return enn_record_dispatch(rec, p, b, 15, &push, enn_ops_row_groups(rec, (s.N + rows - 1) / rows), 1, 1,
                               "memory_step_backward_slots");
}
