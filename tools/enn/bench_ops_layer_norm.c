/* enn bench ops: layer norm forward and backward. */
#include <stdio.h>

#include "bench.h"
#include "bench_cpu.h"
#include "bench_ops_case.h"
#include "ops/layer_norm.h"

typedef struct ln_state {
    uint32_t R, C;
    float *x, *gain, *bias, *dy, *y, *mean, *rstd, *dx, *dgain, *dbias;
    enn_buffer *bx, *bgain, *bbias, *bdy, *by, *bmean, *brstd, *bdx, *bdgain, *bdbias;
} ln_state;

static enn_status rec_ln_fwd(enn_recorder *rec, void *p)
{
    ln_state *s = p;
    return enn_layer_norm_forward(rec, V(s->by), V(s->bmean), V(s->brstd), V(s->bx), V(s->bgain), V(s->bbias), s->R,
                                  s->C, 1e-6f);
}
static void cpu_ln_fwd(void *p)
{
    ln_state *s = p;
    cpu_layer_norm_forward(s->R, s->C, s->x, s->gain, s->bias, 1e-6f, s->y, s->mean, s->rstd);
}
static enn_status rec_ln_bwd(enn_recorder *rec, void *p)
{
    ln_state *s = p;
    return enn_layer_norm_backward(rec, V(s->bdx), V(s->bdgain), V(s->bdbias), V(s->bdy), V(s->bx), V(s->bgain),
                                   V(s->bmean), V(s->brstd), s->R, s->C, 0, 0);
}
static void cpu_ln_bwd(void *p)
{
    ln_state *s = p;
    cpu_layer_norm_backward(s->R, s->C, s->x, s->gain, s->mean, s->rstd, s->dy, s->dx, s->dgain, s->dbias);
}

/* one ENN step's rows (B=128), B*T=3584 rows, and the LM's 4096 tokens; h=128 */
static const uint32_t ln_shapes[][2] = {{128, 128}, {3584, 128}, {4096, 128}};

static int ln_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    ln_state s = {.R = ln_shapes[i][0], .C = ln_shapes[i][1]};
    size_t RC = (size_t)s.R * s.C;
    s.x = host_rand(ar, RC, -2, 2); s.gain = host_rand(ar, s.C, 0.5f, 1.5f); s.bias = host_rand(ar, s.C, -1, 1);
    s.dy = host_rand(ar, RC, -1, 1);
    s.y = host_alloc(ar, RC * 4); s.mean = host_alloc(ar, s.R * 4); s.rstd = host_alloc(ar, s.R * 4);
    s.dx = host_alloc(ar, RC * 4); s.dgain = host_alloc(ar, s.C * 4); s.dbias = host_alloc(ar, s.C * 4);
    s.bx = dev_buf(ar, s.x, RC * 4); s.bgain = dev_buf(ar, s.gain, s.C * 4); s.bbias = dev_buf(ar, s.bias, s.C * 4);
    s.bdy = dev_buf(ar, s.dy, RC * 4); s.by = dev_buf(ar, NULL, RC * 4);
    s.bmean = dev_buf(ar, NULL, s.R * 4); s.brstd = dev_buf(ar, NULL, s.R * 4);
    s.bdx = dev_buf(ar, NULL, RC * 4); s.bdgain = dev_buf(ar, NULL, s.C * 4); s.bdbias = dev_buf(ar, NULL, s.C * 4);
    if (!arena_ok(ar)) return 1;
    bench_case c = {.st = &s};
    snprintf(c.shape, sizeof c.shape, "%ux%u", s.R, s.C);
    /* bytes: x read, y written, gain and bias read, mean and rstd written */
    bench_case f = c;
    f.kernel = "layer_norm_fwd", f.bytes = 4.0 * (2 * RC + 2 * s.C + 2 * s.R), f.record = rec_ln_fwd, f.cpu = cpu_ln_fwd;
    add_check(&f, s.by, s.y, RC, 0);
    add_check(&f, s.brstd, s.rstd, s.R, 0);
    int rc = run_case(ctx, rec, o, &f);
    /* bytes: dy, x read, dx written, gain read, dgain and dbias written, mean and rstd read */
    bench_case b = c;
    b.kernel = "layer_norm_bwd", b.bytes = 4.0 * (3 * RC + 3 * s.C + 2 * s.R), b.record = rec_ln_bwd, b.cpu = cpu_ln_bwd;
    add_check(&b, s.bdx, s.dx, RC, 0);
    add_check(&b, s.bdgain, s.dgain, s.C, 0);
    add_check(&b, s.bdbias, s.dbias, s.C, 0);
    return rc | run_case(ctx, rec, o, &b);
}

int bench_layer_norm(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, sizeof ln_shapes / sizeof ln_shapes[0], ln_one);
}
