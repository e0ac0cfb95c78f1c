/* enn bench ops: attention pooling forward and backward. */
#include <stdio.h>

#include "bench.h"
#include "bench_cpu.h"
#include "bench_ops_case.h"
#include "ops/pooling.h"

typedef struct pool_state {
    uint32_t T, B, h;
    float *hs, *w, *s, *p, *ctx, *dctx, *dhs, *dw, *scratch;
    enn_buffer *bhs, *bw, *bs, *bp, *bctx, *bdctx, *bdhs, *bpartial, *bdw;
} pool_state;

static enn_status rec_pool_fwd(enn_recorder *rec, void *p)
{
    pool_state *s = p;
    return enn_attention_pooling_forward(rec, s->T, s->B, s->h, V(s->bhs), V(s->bw), V(s->bs), V(s->bp), V(s->bctx));
}
static void cpu_pool_fwd(void *p)
{
    pool_state *s = p;
    cpu_attention_pooling_forward(s->T, s->B, s->h, s->hs, s->w, s->s, s->p, s->ctx);
}
/* dw accumulates over repeated runs on both sides; only the first run is checked */
static enn_status rec_pool_bwd(enn_recorder *rec, void *p)
{
    pool_state *s = p;
    return enn_attention_pooling_backward(rec, s->T, s->B, s->h, V(s->bhs), V(s->bw), V(s->bs), V(s->bp), V(s->bdctx),
                                          V(s->bdhs), 0, V(s->bpartial), V(s->bdw));
}
static void cpu_pool_bwd(void *p)
{
    pool_state *s = p;
    cpu_attention_pooling_backward(s->T, s->B, s->h, s->hs, s->w, s->s, s->p, s->dctx, s->dhs, s->dw, s->scratch);
}

static int pool_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    static const uint32_t shapes[][3] = {{8, 16, 32}, {28, 128, 128}};   /* T, B, h: the paper's second */
    pool_state s = {.T = shapes[i][0], .B = shapes[i][1], .h = shapes[i][2]};
    size_t TB = (size_t)s.T * s.B, TBh = TB * s.h, Bh = (size_t)s.B * s.h;
    s.hs = host_rand(ar, TBh, -1, 1); s.w = host_rand(ar, s.h + 1, -0.2f, 0.2f); s.dctx = host_rand(ar, Bh, -1, 1);
    s.s = host_alloc(ar, TB * 4); s.p = host_alloc(ar, TB * 4); s.ctx = host_alloc(ar, Bh * 4);
    s.dhs = host_alloc(ar, TBh * 4); s.dw = host_alloc(ar, (s.h + 1) * 4); s.scratch = host_alloc(ar, s.T * 4);
    s.bhs = dev_buf(ar, s.hs, TBh * 4); s.bw = dev_buf(ar, s.w, (s.h + 1) * 4); s.bdctx = dev_buf(ar, s.dctx, Bh * 4);
    s.bs = dev_buf(ar, NULL, TB * 4); s.bp = dev_buf(ar, NULL, TB * 4); s.bctx = dev_buf(ar, NULL, Bh * 4);
    s.bdhs = dev_buf(ar, NULL, TBh * 4); s.bpartial = dev_buf(ar, NULL, (size_t)s.B * (s.h + 1) * 4);
    s.bdw = dev_buf(ar, NULL, (s.h + 1) * 4);
    if (!arena_ok(ar)) return 1;
    bench_case c = {.st = &s};
    snprintf(c.shape, sizeof c.shape, "T%u B%u h%u", s.T, s.B, s.h);
    /* bytes: hs, w read; s, p, ctx written */
    bench_case f = c;
    f.kernel = "pooling_fwd", f.bytes = 4.0 * (TBh + s.h + 1 + 2 * TB + Bh), f.record = rec_pool_fwd, f.cpu = cpu_pool_fwd;
    add_check(&f, s.bp, s.p, TB, 0);
    add_check(&f, s.bctx, s.ctx, Bh, 0);
    int rc = run_case(ctx, rec, o, &f);
    /* bytes: hs, w, s, p, dctx read; dhs written; dw read and written */
    bench_case b = c;
    b.kernel = "pooling_bwd", b.bytes = 4.0 * (2 * TBh + 3.0 * (s.h + 1) + 2 * TB + Bh);
    b.record = rec_pool_bwd, b.cpu = cpu_pool_bwd;
    add_check(&b, s.bdhs, s.dhs, TBh, 0);
    add_check(&b, s.bdw, s.dw, s.h + 1, 0);
    return rc | run_case(ctx, rec, o, &b);
}

int bench_pooling(enn_context *ctx, const bench_options *o) { return for_shapes(ctx, o, 2, pool_one); }
