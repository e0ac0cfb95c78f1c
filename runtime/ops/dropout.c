/* Launchers of shaders/dropout.comp. */
#include "ops/dropout.h"
#include "ops/launch.h"
#include "ops/philox.h"

#define DROPOUT_LOCAL 64

typedef struct dropout_push {
    uint32_t n, op, use_mask, threshold;
    uint32_t seed[2], stream[2];
    float scale, beta;
} dropout_push;

static enn_status dropout(enn_recorder *rec, const char *op, uint32_t kind, enn_view out, enn_view in, uint32_t n,
                          const enn_dropout_params *p, float beta)
{
    if (!p) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no parameters", op);
    if (!(p->p >= 0.0f && p->p < 1.0f)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: rate p = %g outside [0, 1)", op, p->p);
    if (n == 0) return ENN_OK;
    uint64_t bytes = (uint64_t)n * 4;
    int use_mask = p->mask.buf != NULL;
    ENN_TRY(enn_ops_check_view(op, "output", out, bytes));
    if (kind == 0) ENN_TRY(enn_ops_check_view(op, "input", in, bytes));
    if (use_mask) ENN_TRY(enn_ops_check_view(op, "mask", p->mask, bytes));
    const uint32_t spec[1] = {DROPOUT_LOCAL};
    const enn_pipeline *pipe;
    ENN_TRY(enn_ops_pipeline(rec, "dropout", 3, sizeof(dropout_push), spec, 1, &pipe));
    dropout_push push = {.n = n, .op = kind, .use_mask = (uint32_t)use_mask, .threshold = enn_dropout_threshold(p->p),
                         .scale = 1.0f / (1.0f - p->p), .beta = beta};
    enn_ops_split64(p->seed, push.seed);
    enn_ops_split64(p->stream, push.stream);
    /* Bindings the kernel does not read are filled with the output (read-only there). */
    enn_binding b[3] = {kind == 0 ? enn_bind(in, bytes, ENN_ACCESS_READ) : enn_bind(out, bytes, ENN_ACCESS_READ),
                        use_mask ? enn_bind(p->mask, bytes, ENN_ACCESS_READ) : enn_bind(out, bytes, ENN_ACCESS_READ),
                        enn_bind(out, bytes, beta != 0.0f ? ENN_ACCESS_READ_WRITE : ENN_ACCESS_WRITE)};
    uint32_t gx = 1, gy = 1;
    ENN_TRY(enn_ops_grid(rec, n, DROPOUT_LOCAL, &gx, &gy));
    return enn_record_dispatch(rec, pipe, b, 3, &push, gx, gy, 1, op);
}

enn_status enn_dropout_forward(enn_recorder *rec, enn_view y, enn_view x, uint32_t n, const enn_dropout_params *p)
{
    return dropout(rec, "dropout_forward", 0, y, x, n, p, 0.0f);
}

enn_status enn_dropout_backward(enn_recorder *rec, enn_view dx, enn_view dy, uint32_t n, const enn_dropout_params *p,
                                float beta_dx)
{
    return dropout(rec, "dropout_backward", 0, dx, dy, n, p, beta_dx);
}

enn_status enn_dropout_mask(enn_recorder *rec, enn_view mask_out, uint32_t n, const enn_dropout_params *p)
{
    return dropout(rec, "dropout_mask", 1, mask_out, mask_out, n, p, 0.0f);
}
