/* Launchers of shaders/effective_memory.comp. */
#include "ops/effective_memory.h"
#include "ops/launch.h"

#define EFFECTIVE_LOCAL 64

typedef struct effective_push {
    uint32_t nh, copies, op;
    float alpha, beta_dM, beta_dH;
} effective_push;

static enn_status check(const char *op, enn_memory_shape s)
{
    if (s.N == 0 || s.h == 0 || (s.per_sample && s.B == 0))
        return enn_error(ENN_ERROR_SHAPE, "%s: empty shape B=%u N=%u h=%u", op, s.B, s.N, s.h);
    if ((uint64_t)(s.per_sample ? s.B : 1) * s.N * s.h > 0xffffffffull)
        return enn_error(ENN_ERROR_SHAPE, "%s: B*N*h = %u*%u*%u passes 2^32 elements", op, s.B, s.N, s.h);
    return ENN_OK;
}

static enn_status dispatch(enn_recorder *rec, const char *op, enn_memory_shape s, effective_push push,
                           const enn_binding *b)
{
    const uint32_t spec[1] = {EFFECTIVE_LOCAL};
    const enn_pipeline *p;
    ENN_TRY(enn_ops_pipeline(rec, "effective_memory", 4, sizeof(effective_push), spec, 1, &p));
    uint32_t gx = 1, gy = 1;
    ENN_TRY(enn_ops_grid(rec, (uint64_t)s.N * s.h, EFFECTIVE_LOCAL, &gx, &gy));
    return enn_record_dispatch(rec, p, b, 4, &push, gx, gy, 1, op);
}

enn_status enn_effective_memory_forward(enn_recorder *rec, enn_memory_shape s, enn_view E, enn_view M, enn_view H,
                                        float alpha)
{
    const char *op = "effective_memory_forward";
    ENN_TRY(check(op, s));
    uint32_t copies = s.per_sample ? s.B : 1;
    uint64_t bm = (uint64_t)s.N * s.h * 4, bh = bm * copies;
    ENN_TRY(enn_ops_check_view(op, "E", E, bh));
    ENN_TRY(enn_ops_check_view(op, "M", M, bm));
    ENN_TRY(enn_ops_check_view(op, "H", H, bh));
    effective_push push = {s.N * s.h, copies, 0, alpha, 0, 0};
    /* Binding 3 is unused in the forward pass: a read of M keeps it valid. */
    enn_binding b[4] = {enn_bind(M, bm, ENN_ACCESS_READ), enn_bind(H, bh, ENN_ACCESS_READ),
                        enn_bind(E, bh, ENN_ACCESS_WRITE), enn_bind(E, bh, ENN_ACCESS_WRITE)};
    return dispatch(rec, op, s, push, b);
}

enn_status enn_effective_memory_backward(enn_recorder *rec, enn_memory_shape s, enn_view dM, enn_view dH, enn_view dE,
                                         float alpha, float beta_dM, float beta_dH)
{
    const char *op = "effective_memory_backward";
    ENN_TRY(check(op, s));
    uint32_t copies = s.per_sample ? s.B : 1;
    uint64_t bm = (uint64_t)s.N * s.h * 4, bh = bm * copies;
    ENN_TRY(enn_ops_check_view(op, "dM", dM, bm));
    ENN_TRY(enn_ops_check_view(op, "dH", dH, bh));
    ENN_TRY(enn_ops_check_view(op, "dE", dE, bh));
    effective_push push = {s.N * s.h, copies, 1, alpha, beta_dM, beta_dH};
    enn_binding b[4] = {enn_bind(dE, bh, ENN_ACCESS_READ), enn_bind(dE, bh, ENN_ACCESS_READ),
                        enn_bind(dM, bm, beta_dM != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE),
                        enn_bind(dH, bh, beta_dH != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE)};
    return dispatch(rec, op, s, push, b);
}
