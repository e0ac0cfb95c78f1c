/* Launchers of shaders/cosine_attention.comp. */
#include "ops/cosine_attention.h"
#include "ops/launch.h"

#define ATTENTION_LOCAL 64

typedef struct attention_push {
    uint32_t B, N, h, e_stride;
    float inv_tau;
    uint32_t has_da;
    float beta_dz, beta_dE;
} attention_push;

static uint64_t e_elems(enn_memory_shape s)
{
    return (uint64_t)(s.per_sample ? s.B : 1) * s.N * s.h;
}

/* The slot count rounded up to a power of two (at least 64): the size of the kernels'
 * shared arrays, checked against the device's shared memory. */
static enn_status max_n_for(enn_recorder *rec, const char *op, enn_memory_shape s, uint32_t arrays, uint32_t *out)
{
    uint32_t max_n = 64;
    while (max_n < s.N) max_n *= 2;
    uint64_t bytes = ((uint64_t)arrays * max_n + ATTENTION_LOCAL) * 4;
    const enn_context *ctx = enn_recorder_context(rec);
    if (bytes > ctx->caps.max_shared_memory)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: N = %u memory slots need %llu bytes of shared memory, the device has %u",
                         op, s.N, (unsigned long long)bytes, ctx->caps.max_shared_memory);
    *out = max_n;
    return ENN_OK;
}

static enn_status check_shape(const char *op, enn_memory_shape s, float tau_e)
{
    if (s.B == 0 || s.N == 0 || s.h == 0)
        return enn_error(ENN_ERROR_SHAPE, "%s: empty shape B=%u N=%u h=%u", op, s.B, s.N, s.h);
    if ((uint64_t)s.B * s.N * s.h > 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: B*N*h = %u*%u*%u passes 2^32 elements", op, s.B, s.N, s.h);
    if (!(tau_e > 0.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: tau_e = %g must be positive", op, tau_e);
    return ENN_OK;
}

enn_status enn_cosine_attention_forward(enn_recorder *rec, enn_memory_shape s, enn_view a, enn_view m, enn_view z,
                                        enn_view E, float tau_e)
{
    const char *op = "cosine_attention_forward";
    ENN_TRY(check_shape(op, s, tau_e));
    uint64_t bz = (uint64_t)s.B * s.h * 4, ba = (uint64_t)s.B * s.N * 4, bE = e_elems(s) * 4;
    ENN_TRY(enn_ops_check_view(op, "a", a, ba));
    ENN_TRY(enn_ops_check_view(op, "m", m, bz));
    ENN_TRY(enn_ops_check_view(op, "z", z, bz));
    ENN_TRY(enn_ops_check_view(op, "E", E, bE));
    uint32_t max_n = 64;
    ENN_TRY(max_n_for(rec, op, s, 1, &max_n));
    const uint32_t spec[4] = {ATTENTION_LOCAL, 1, 1, max_n};
    const enn_pipeline *p;
    ENN_TRY(enn_ops_pipeline(rec, "cosine_attention", 4, sizeof(attention_push), spec, 4, &p));
    attention_push push = {s.B, s.N, s.h, s.per_sample ? s.N * s.h : 0, 1.0f / tau_e, 0, 0, 0};
    enn_binding bind[4] = {enn_bind(z, bz, ENN_ACCESS_READ), enn_bind(E, bE, ENN_ACCESS_READ),
                           enn_bind(a, ba, ENN_ACCESS_WRITE), enn_bind(m, bz, ENN_ACCESS_WRITE)};
    return enn_record_dispatch(rec, p, bind, 4, &push, enn_ops_row_groups(rec, s.B), 1, 1, op);
}

uint64_t enn_cosine_attention_workspace_bytes(enn_memory_shape s)
{
    return ((uint64_t)2 * s.B * s.N + s.B) * 4;
}

enn_status enn_cosine_attention_backward(enn_recorder *rec, enn_memory_shape s, enn_view dz, enn_view dE,
                                         enn_view workspace, enn_view dm, enn_view da_in, enn_view z, enn_view E,
                                         enn_view a, float tau_e, float beta_dz, float beta_dE)
{
    const char *op = "cosine_attention_backward";
    ENN_TRY(check_shape(op, s, tau_e));
    uint64_t bz = (uint64_t)s.B * s.h * 4, ba = (uint64_t)s.B * s.N * 4, bE = e_elems(s) * 4;
    uint64_t bws = enn_cosine_attention_workspace_bytes(s);
    ENN_TRY(enn_ops_check_view(op, "dz", dz, bz));
    ENN_TRY(enn_ops_check_view(op, "dE", dE, bE));
    ENN_TRY(enn_ops_check_view(op, "workspace", workspace, bws));
    ENN_TRY(enn_ops_check_view(op, "dm", dm, bz));
    ENN_TRY(enn_ops_check_view(op, "z", z, bz));
    ENN_TRY(enn_ops_check_view(op, "E", E, bE));
    ENN_TRY(enn_ops_check_view(op, "a", a, ba));
    int has_da = da_in.buf != NULL;
    if (has_da) ENN_TRY(enn_ops_check_view(op, "da_in", da_in, ba));
    uint32_t max_n = 64;
    ENN_TRY(max_n_for(rec, op, s, 3, &max_n));
    /* vec4 loads when rows of h are whole vectors; 8 rows (slots) per workgroup on CPU
     * devices (each loaded vector of E serves 8 rows; 2 cores need few groups), one on
     * GPUs (more workgroups). */
    const enn_context *ctx = enn_recorder_context(rec);
    int vec4 = s.h % 4 == 0;
    uint32_t rows = ctx->caps.device_type == ENN_DEVICE_CPU ? 8 : 1;
    if (((uint64_t)3 * rows * max_n + 2 * rows) * 4 > ctx->caps.max_shared_memory) rows = 1;
    static const char *const row_kernels[2][2] = {{"cosine_attention_backward", "cosine_attention_backward_r8"},
                                                  {"cosine_attention_backward_v4", "cosine_attention_backward_v4r8"}};
    static const char *const slot_kernels[2][2] = {
        {"cosine_attention_backward_memory", "cosine_attention_backward_memory_r8"},
        {"cosine_attention_backward_memory_v4", "cosine_attention_backward_memory_v4r8"}};
    const uint32_t spec[4] = {ATTENTION_LOCAL, 1, 1, max_n};
    const enn_pipeline *p;
    ENN_TRY(enn_ops_pipeline(rec, row_kernels[vec4][rows == 8], 8, sizeof(attention_push), spec, 4, &p));
    attention_push push = {s.B, s.N, s.h, s.per_sample ? s.N * s.h : 0, 1.0f / tau_e, (uint32_t)has_da, beta_dz,
                           beta_dE};
    enn_access dz_access = beta_dz != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE;
    enn_access dE_access = beta_dE != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE;
    /* Without da_in, a is bound in its place (never read). In shared mode the first
     * kernel does not touch dE; a read binding of one vector keeps the descriptor valid
     * without a false write hazard. */
    enn_binding bind[8] = {
        enn_bind(z, bz, ENN_ACCESS_READ),      enn_bind(E, bE, ENN_ACCESS_READ),
        enn_bind(a, ba, ENN_ACCESS_READ),      enn_bind(dm, bz, ENN_ACCESS_READ),
        enn_bind(has_da ? da_in : a, ba, ENN_ACCESS_READ), enn_bind(dz, bz, dz_access),
        enn_bind(workspace, bws, ENN_ACCESS_WRITE),
        s.per_sample ? enn_bind(dE, bE, dE_access) : enn_bind(dE, vec4 ? 16 : 4, ENN_ACCESS_READ)};
    ENN_TRY(enn_record_dispatch(rec, p, bind, 8, &push, enn_ops_row_groups(rec, (s.B + rows - 1) / rows), 1, 1, op));
    if (s.per_sample) return ENN_OK;

    const enn_pipeline *pm;
    ENN_TRY(enn_ops_pipeline(rec, slot_kernels[vec4][rows == 8], 6, sizeof(attention_push), spec, 4, &pm));
    enn_binding bm[6] = {enn_bind(z, bz, ENN_ACCESS_READ),  enn_bind(E, bE, ENN_ACCESS_READ),
                         enn_bind(a, ba, ENN_ACCESS_READ),  enn_bind(dm, bz, ENN_ACCESS_READ),
                         enn_bind(workspace, bws, ENN_ACCESS_READ), enn_bind(dE, bE, dE_access)};
    return enn_record_dispatch(rec, pm, bm, 6, &push, enn_ops_row_groups(rec, (s.N + rows - 1) / rows), 1, 1,
                               "cosine_attention_backward_memory");
}
