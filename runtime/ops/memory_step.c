/* Launcher of shaders/memory_step.comp (and, for a shared trace, hebbian_trace). */
#include "ops/memory_step.h"
#include "ops/launch.h"

#define STEP_LOCAL 64

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
    if (s.B == 0 || s.N == 0 || s.h == 0)
        return enn_error(ENN_ERROR_SHAPE, "%s: empty shape B=%u N=%u h=%u", op, s.B, s.N, s.h);
    if ((uint64_t)s.B * s.N * s.h >= 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: B*N*h = %u*%u*%u passes 2^32 elements", op, s.B, s.N, s.h);
    if (!(tau_e > 0.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: tau_e = %g must be positive", op, tau_e);
    if (!(hp->eta >= 0.0f && hp->eta <= 1.0f) || !(hp->clip > 0.0f))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: eta = %g, clip = %g", op, hp->eta, hp->clip);
    if (hp->noise.mode != ENN_NOISE_OFF && hp->noise.mode != ENN_NOISE_PHILOX && hp->noise.mode != ENN_NOISE_BUFFER)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: unknown noise mode %d", op, (int)hp->noise.mode);
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
    ENN_TRY(enn_ops_pipeline(rec, names[vec4][rows == 8], 7, sizeof(step_push), spec, 4, &p));
    step_push push = {.B = s.B, .N = s.N, .h = s.h, .per_sample = s.per_sample != 0,
                      .noise_mode = (uint32_t)hp->noise.mode, .inv_tau = 1.0f / tau_e, .alpha = alpha,
                      .decay = 1.0f - hp->eta, .eta = hp->eta, .sigma = hp->noise.sigma, .clip = hp->clip};
    enn_ops_split64(hp->noise.seed, push.seed);
    enn_ops_split64(hp->noise.stream, push.stream);
    /* In shared mode the kernel leaves H_new alone (hebbian_trace writes it next); a
     * one-vector read of H keeps the binding valid without a false hazard. */
    uint64_t one = vec4 ? 16 : 4;
    enn_binding b[7] = {enn_bind(z, bz, ENN_ACCESS_READ), enn_bind(M, bm, ENN_ACCESS_READ),
                        enn_bind(H, bH, ENN_ACCESS_READ),
                        buffer_noise && s.per_sample ? enn_bind(hp->noise.xi, bH, ENN_ACCESS_READ)
                                                     : enn_bind(H, one, ENN_ACCESS_READ),
                        enn_bind(a, ba, ENN_ACCESS_WRITE), enn_bind(m, bz, ENN_ACCESS_WRITE),
                        s.per_sample ? enn_bind(H_new, bH, ENN_ACCESS_WRITE) : enn_bind(H, one, ENN_ACCESS_READ)};
    ENN_TRY(enn_record_dispatch(rec, p, b, 7, &push, enn_ops_row_groups(rec, (s.B + rows - 1) / rows), 1, 1, op));
    if (s.per_sample) return ENN_OK;
    return enn_hebbian_trace_forward(rec, s, H_new, H, a, z, hp);
}
