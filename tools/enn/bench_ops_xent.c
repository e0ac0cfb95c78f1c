/* enn bench ops: softmax cross-entropy forward and backward. */
#include <stdio.h>

#include "bench.h"
#include "bench_cpu.h"
#include "bench_ops_case.h"
#include "ops/softmax_cross_entropy.h"

typedef struct xent_state {
    enn_xent_shape shape;
    float *logits, *loss, *lse, *dlogits, mean_loss;
    uint32_t *labels;
    enn_buffer *blogits, *blabels, *bloss, *blse, *bpred, *bstats, *bdlogits;
} xent_state;

static enn_status rec_xent_fwd(enn_recorder *rec, void *p)
{
    xent_state *s = p;
    return enn_softmax_cross_entropy_forward(rec, &s->shape, V(s->blogits), V(s->blabels), V(s->bloss), V(s->blse),
                                             V(s->bpred), V(s->bstats));
}
static void cpu_xent_fwd(void *p)
{
    xent_state *s = p;
    s->mean_loss = cpu_xent_forward(s->shape.rows, s->shape.classes, s->logits, s->labels, s->loss, s->lse);
}
static enn_status rec_xent_bwd(enn_recorder *rec, void *p)
{
    xent_state *s = p;
    return enn_softmax_cross_entropy_backward(rec, &s->shape, V(s->blogits), V(s->blabels), V(s->blse), V(s->bstats),
                                              1.0f, V(s->bdlogits), (enn_view){0});
}
static void cpu_xent_bwd(void *p)
{
    xent_state *s = p;
    cpu_xent_backward(s->shape.rows, s->shape.classes, s->logits, s->labels, s->lse, 1.0f, s->dlogits);
}

static int xent_one_shape(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, uint32_t R,
                          uint32_t Vc)
{
    xent_state s = {.shape = {.rows = R, .classes = Vc, .ignore_index = ENN_NO_IGNORE}};
    size_t RV = (size_t)R * Vc;
    s.logits = host_rand(ar, RV, -4, 4);
    s.labels = host_ids(ar, R, Vc);
    s.loss = host_alloc(ar, R * 4); s.lse = host_alloc(ar, R * 4); s.dlogits = host_alloc(ar, RV * 4);
    s.blogits = dev_buf(ar, s.logits, RV * 4); s.blabels = dev_buf(ar, s.labels, R * 4);
    s.bloss = dev_buf(ar, NULL, R * 4); s.blse = dev_buf(ar, NULL, R * 4); s.bpred = dev_buf(ar, NULL, R * 4);
    s.bstats = dev_buf(ar, NULL, sizeof(enn_xent_stats)); s.bdlogits = dev_buf(ar, NULL, RV * 4);
    if (!arena_ok(ar)) return 1;
    bench_case c = {.st = &s};
    snprintf(c.shape, sizeof c.shape, "R%u V%u", R, Vc);
    /* bytes: logits and labels read; loss, lse, pred written (stats: 20 bytes, ignored) */
    bench_case f = c;
    f.kernel = "xent_fwd", f.bytes = 4.0 * (RV + 4.0 * R), f.record = rec_xent_fwd, f.cpu = cpu_xent_fwd;
    add_check(&f, s.bloss, s.loss, R, 0);
    add_check(&f, s.blse, s.lse, R, 0);
    add_check(&f, s.bstats, &s.mean_loss, 1, 0);   /* stats.mean_loss is its first float */
    int rc = run_case(ctx, rec, o, &f);
    /* bytes: logits read, dlogits written, labels and lse read */
    bench_case b = c;
    b.kernel = "xent_bwd", b.bytes = 4.0 * (2 * RV + 2.0 * R), b.record = rec_xent_bwd, b.cpu = cpu_xent_bwd;
    add_check(&b, s.bdlogits, s.dlogits, RV, 0);
    return rc | run_case(ctx, rec, o, &b);
}

/* classification (B=128 rows, 10 classes), the LM's R=4096 tokens over 8192 classes, and
 * a large vocabulary (R=512 x V=188590) on GPUs; smaller on CPU devices */
static int xent_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    static const uint32_t gpu[][2] = {{128, 10}, {4096, 8192}, {512, 188590}};
    static const uint32_t cpu[][2] = {{128, 10}, {512, 8192}, {16, 188590}};
    const uint32_t *s = is_cpu_device(ctx) ? cpu[i] : gpu[i];
    return xent_one_shape(ctx, rec, o, ar, s[0], s[1]);
}

int bench_xent(enn_context *ctx, const bench_options *o) { return for_shapes(ctx, o, 3, xent_one); }
