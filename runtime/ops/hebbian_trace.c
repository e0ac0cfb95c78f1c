/* Launchers of shaders/hebbian_trace.comp. */
#include "ops/hebbian_trace.h"
#include "ops/launch.h"

#define HEBBIAN_LOCAL 64

typedef struct hebbian_push {
    uint32_t B, N, h, per_sample;
    uint32_t seed[2], stream[2];
    uint32_t noise_mode;
    float decay, eta, inv_batch, sigma, clip;
    float beta_dH, beta_da, beta_dz, g_scale;
    uint32_t mean_parts;
} hebbian_push;

#define TILE_LOCAL 8
/* A tile: 8 slots x 4 vectors of h per invocation (SB, JB in the shader). Against 4 x 4
 * tiles read from storage buffers, on lavapipe at paper-mnist: 9.8-14.9 -> 5.2-6.6 ms
 * per training step (8 x 8: the same). */
#define TILE_SLOTS 8
#define TILE_VECTORS 4
#define MEAN_LOCAL 256 /* GPUs: the update's workgroup when the batch sum is split */

uint32_t enn_hebbian_mean_parts(const enn_context *ctx, enn_memory_shape s)
{
    if (s.per_sample || ctx->caps.device_type == ENN_DEVICE_CPU || enn_ops_local_size(ctx, MEAN_LOCAL, 0) < MEAN_LOCAL)
        return 1;
    uint32_t vectors = 1, hv = s.h % 4 == 0 ? s.h / 4 : s.h;
    while (vectors < hv) vectors *= 2;
    return vectors >= MEAN_LOCAL ? 1 : MEAN_LOCAL / vectors;
}

static uint64_t trace_elems(enn_memory_shape s)
{
    return (uint64_t)(s.per_sample ? s.B : 1) * s.N * s.h;
}

static enn_status check(const char *op, enn_memory_shape s, const enn_hebbian_params *p)
{
    if (!p) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no parameters", op);
    if (s.B == 0 || s.N == 0 || s.h == 0)
        return enn_error(ENN_ERROR_SHAPE, "%s: empty shape B=%u N=%u h=%u", op, s.B, s.N, s.h);
    if ((uint64_t)s.B * s.N * s.h >= 0xffffffffull || (uint64_t)s.B * (s.N + s.h) >= 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: B*N*h = %u*%u*%u passes 2^32 elements", op, s.B, s.N, s.h);
    if (!(p->eta >= 0.0f && p->eta <= 1.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: eta = %g outside [0, 1]", op, p->eta);
    if (!(p->clip > 0.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: clip = %g must be positive", op, p->clip);
    if (p->noise.mode != ENN_NOISE_OFF && p->noise.mode != ENN_NOISE_PHILOX && p->noise.mode != ENN_NOISE_BUFFER)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: unknown noise mode %d", op, (int)p->noise.mode);
    if (p->noise.mode == ENN_NOISE_BUFFER)
        ENN_TRY(enn_ops_check_view(op, "noise buffer xi", p->noise.xi, trace_elems(s) * 4));
    return ENN_OK;
}

/* vec4 elements when rows of h are whole vectors. */
static int use_vec4(enn_memory_shape s)
{
    return s.h % 4 == 0;
}

/* The grid of the element kernels (which loop with the grid's stride past the largest
 * grid): one invocation per vector. (Capping the grid at a few workgroups per core was
 * slower on lavapipe, not faster.) */
static uint32_t element_groups(enn_recorder *rec, uint64_t vectors)
{
    const enn_context *ctx = enn_recorder_context(rec);
    uint64_t groups = (vectors + HEBBIAN_LOCAL - 1) / HEBBIAN_LOCAL;
    uint64_t cap = ctx->caps.max_workgroup_count[0] < 65535u ? ctx->caps.max_workgroup_count[0] : 65535u;
    if (groups > cap) groups = cap;
    return groups ? (uint32_t)groups : 1;
}

static hebbian_push make_push(const enn_context *ctx, enn_memory_shape s, const enn_hebbian_params *p)
{
    hebbian_push push = {.B = s.B, .N = s.N, .h = s.h, .per_sample = s.per_sample != 0,
                         .noise_mode = (uint32_t)p->noise.mode, .decay = 1.0f - p->eta, .eta = p->eta,
                         .inv_batch = 1.0f / (float)s.B, .sigma = p->noise.sigma, .clip = p->clip};
    enn_ops_split64(p->noise.seed, push.seed);
    enn_ops_split64(p->noise.stream, push.stream);
    push.mean_parts = enn_hebbian_mean_parts(ctx, s);
    return push;
}

enn_status enn_hebbian_trace_forward(enn_recorder *rec, enn_memory_shape s, enn_view H_new, enn_view H, enn_view a,
                                     enn_view z, const enn_hebbian_params *p)
{
    const char *op = "hebbian_trace_forward";
    ENN_TRY(check(op, s, p));
    uint64_t n = trace_elems(s), bH = n * 4, ba = (uint64_t)s.B * s.N * 4, bz = (uint64_t)s.B * s.h * 4;
    ENN_TRY(enn_ops_check_view(op, "H_new", H_new, bH));
    ENN_TRY(enn_ops_check_view(op, "H", H, bH));
    ENN_TRY(enn_ops_check_view(op, "a", a, ba));
    ENN_TRY(enn_ops_check_view(op, "z", z, bz));
    if (H_new.buf == H.buf && H_new.offset < H.offset + bH && H.offset < H_new.offset + bH)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: H_new overlaps H", op);
    hebbian_push push = make_push(enn_recorder_context(rec), s, p);
    /* A split batch sum: MEAN_LOCAL threads, mean_parts per vector (see the shader). */
    uint32_t local = push.mean_parts > 1 ? MEAN_LOCAL : HEBBIAN_LOCAL;
    const uint32_t spec[1] = {local};
    const enn_pipeline *pipe;
    int vec4 = use_vec4(s);
    /* CPU devices, shared trace: tiles of 8 slots x 4 vectors per invocation (see the
     * shader), 8 invocations per workgroup. */
    int tiles = vec4 && !s.per_sample && push.mean_parts <= 1 &&
                enn_recorder_context(rec)->caps.device_type == ENN_DEVICE_CPU;
    int buffer_noise = p->noise.mode == ENN_NOISE_BUFFER;
    const enn_view inputs[4] = {H, a, z, buffer_noise ? p->noise.xi : H};
    uint64_t largest = (uint64_t)s.B * s.N > n / 4 ? (uint64_t)s.B * s.N : n / 4;
    /* The tiles read their inputs as texels (hebbian_trace_tv4_tiles) where they may. */
    if (tiles && enn_ops_texel_views_fit(enn_recorder_context(rec), inputs, 4, largest)) {
        static const VkFormat formats[5] = {VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_R32_SFLOAT,
                                            VK_FORMAT_R32G32B32A32_SFLOAT, VK_FORMAT_R32G32B32A32_SFLOAT};
        const uint32_t tile_spec[1] = {TILE_LOCAL};
        enn_pipeline_desc pd = {.shader = "hebbian_trace_tv4_tiles", .num_buffers = 5,
                                .push_size = sizeof(hebbian_push), .spec = tile_spec, .spec_count = 1,
                                .texel_formats = formats};
        ENN_TRY(enn_pipeline_get(enn_recorder_context(rec), &pd, &pipe));
    } else if (tiles) {
        const uint32_t tile_spec[1] = {TILE_LOCAL};
        ENN_TRY(enn_ops_pipeline(rec, "hebbian_trace_v4_tiles", 5, sizeof(hebbian_push), tile_spec, 1, &pipe));
    } else {
        ENN_TRY(enn_ops_pipeline(rec, vec4 ? "hebbian_trace_v4" : "hebbian_trace", 5, sizeof(hebbian_push), spec, 1,
                                 &pipe));
    }
    enn_binding bind[5] = {enn_bind(H, bH, ENN_ACCESS_READ), enn_bind(a, ba, ENN_ACCESS_READ),
                           enn_bind(z, bz, ENN_ACCESS_READ),
                           buffer_noise ? enn_bind(p->noise.xi, bH, ENN_ACCESS_READ) : enn_bind(H, bH, ENN_ACCESS_READ),
                           enn_bind(H_new, bH, ENN_ACCESS_WRITE)};
    uint64_t vectors = n / (vec4 ? 4 : 1);
    if (tiles) {
        uint64_t count = (uint64_t)((s.N + TILE_SLOTS - 1) / TILE_SLOTS) *
                         ((s.h / 4 + TILE_VECTORS - 1) / TILE_VECTORS);
        return enn_record_dispatch(rec, pipe, bind, 5, &push, enn_ops_row_groups(rec, (uint32_t)((count + TILE_LOCAL - 1) / TILE_LOCAL)),
                                   1, 1, op);
    }
    uint32_t groups = push.mean_parts > 1
                          ? enn_ops_row_groups(rec, (uint32_t)((vectors + local / push.mean_parts - 1) /
                                                               (local / push.mean_parts)))
                          : element_groups(rec, vectors);
    return enn_record_dispatch(rec, pipe, bind, 5, &push, groups, 1, 1, op);
}

uint64_t enn_hebbian_trace_workspace_bytes(enn_memory_shape s)
{
    return trace_elems(s) * 4;
}

enn_status enn_hebbian_trace_backward(enn_recorder *rec, enn_memory_shape s, enn_view dH, enn_view da, enn_view dz,
                                      enn_view workspace, enn_view dH_new, enn_view H, enn_view a, enn_view z,
                                      const enn_hebbian_params *p, float beta_dH, float beta_da, float beta_dz)
{
    const char *op = "hebbian_trace_backward";
    ENN_TRY(check(op, s, p));
    uint64_t n = trace_elems(s), bH = n * 4, ba = (uint64_t)s.B * s.N * 4, bz = (uint64_t)s.B * s.h * 4;
    ENN_TRY(enn_ops_check_view(op, "dH", dH, bH));
    ENN_TRY(enn_ops_check_view(op, "da", da, ba));
    ENN_TRY(enn_ops_check_view(op, "dz", dz, bz));
    ENN_TRY(enn_ops_check_view(op, "workspace", workspace, bH));
    ENN_TRY(enn_ops_check_view(op, "dH_new", dH_new, bH));
    ENN_TRY(enn_ops_check_view(op, "H", H, bH));
    ENN_TRY(enn_ops_check_view(op, "a", a, ba));
    ENN_TRY(enn_ops_check_view(op, "z", z, bz));
    const uint32_t spec[1] = {HEBBIAN_LOCAL};
    const enn_pipeline *pt, *pi;
    /* backward_inputs: 8 batch rows per workgroup on CPU devices (each loaded vector of a
     * shared G serves 8 rows), one on GPUs (more workgroups). */
    int vec4 = use_vec4(s);
    uint32_t rows = enn_recorder_context(rec)->caps.device_type == ENN_DEVICE_CPU ? 8 : 1;
    static const char *const input_kernels[2][2] = {
        {"hebbian_trace_backward_inputs", "hebbian_trace_backward_inputs_r8"},
        {"hebbian_trace_backward_inputs_v4", "hebbian_trace_backward_inputs_v4r8"}};
    ENN_TRY(enn_ops_pipeline(rec, vec4 ? "hebbian_trace_backward_trace_v4" : "hebbian_trace_backward_trace", 7,
                             sizeof(hebbian_push), spec, 1, &pt));
    ENN_TRY(enn_ops_pipeline(rec, input_kernels[vec4][rows == 8], 5, sizeof(hebbian_push), spec, 1, &pi));
    hebbian_push push = make_push(enn_recorder_context(rec), s, p);
    push.beta_dH = beta_dH, push.beta_da = beta_da, push.beta_dz = beta_dz;
    push.g_scale = s.per_sample ? p->eta : p->eta * push.inv_batch;
    int buffer_noise = p->noise.mode == ENN_NOISE_BUFFER;
    enn_binding bt[7] = {enn_bind(H, bH, ENN_ACCESS_READ), enn_bind(a, ba, ENN_ACCESS_READ),
                         enn_bind(z, bz, ENN_ACCESS_READ),
                         buffer_noise ? enn_bind(p->noise.xi, bH, ENN_ACCESS_READ) : enn_bind(H, bH, ENN_ACCESS_READ),
                         enn_bind(dH_new, bH, ENN_ACCESS_READ),
                         enn_bind(dH, bH, beta_dH != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE),
                         enn_bind(workspace, bH, ENN_ACCESS_WRITE)};
    ENN_TRY(enn_record_dispatch(rec, pt, bt, 7, &push, element_groups(rec, n / (vec4 ? 4 : 1)), 1, 1,
                                "hebbian_trace_backward_trace"));
    enn_binding bi[5] = {enn_bind(workspace, bH, ENN_ACCESS_READ), enn_bind(a, ba, ENN_ACCESS_READ),
                         enn_bind(z, bz, ENN_ACCESS_READ),
                         enn_bind(da, ba, beta_da != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE),
                         enn_bind(dz, bz, beta_dz != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE)};
    return enn_record_dispatch(rec, pi, bi, 5, &push, enn_ops_row_groups(rec, (s.B + rows - 1) / rows), 1, 1,
                               "hebbian_trace_backward_inputs");
}
