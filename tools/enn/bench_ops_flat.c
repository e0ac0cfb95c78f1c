/* enn bench ops: the flat kernels (add, tanh, sum_rows, l2_norm, dropout, Adam). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_cpu.h"
#include "bench_ops_case.h"
#include "core/error.h"
#include "ops/adam.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

/* Elementwise ops, sums, norms, dropout and Adam share one state: n floats in x, y, g. */
typedef struct flat_state {
    size_t n;
    uint32_t rows, cols;             /* sum_rows */
    float *x, *y, *g, *out, *dx, *m, *v, norm;
    enn_buffer *bx, *by, *bg, *bout, *bdx, *bws, *bm, *bv;
    enn_dropout_params dp;
    enn_param_table *table;
    enn_adam_params hp;
    float alpha;
} flat_state;

static enn_status rec_add(enn_recorder *rec, void *p)
{
    flat_state *s = p;
    return enn_add(rec, s->n, V(s->bx), V(s->bg), V(s->bout));
}
static void cpu_add_(void *p)
{
    flat_state *s = p;
    cpu_add(s->n, s->x, s->g, s->out);
}
static enn_status rec_tanh_fwd(enn_recorder *rec, void *p)
{
    flat_state *s = p;
    return enn_activation_forward(rec, ENN_ACT_TANH, s->n, V(s->bx), V(s->bout));
}
static void cpu_tanh_fwd(void *p)
{
    flat_state *s = p;
    cpu_tanh_forward(s->n, s->x, s->out);
}
/* y: the tanh output (in (-1, 1)), g: the incoming gradient */
static enn_status rec_tanh_bwd(enn_recorder *rec, void *p)
{
    flat_state *s = p;
    return enn_activation_backward(rec, ENN_ACT_TANH, s->n, V(s->by), V(s->bg), 0, V(s->bdx));
}
static void cpu_tanh_bwd(void *p)
{
    flat_state *s = p;
    cpu_tanh_backward(s->n, s->y, s->g, s->dx);
}
static enn_status rec_sum_rows(enn_recorder *rec, void *p)
{
    flat_state *s = p;
    return enn_sum_rows(rec, s->rows, s->cols, V(s->bx), 1, 0, V(s->bout));
}
static void cpu_sum_rows_(void *p)
{
    flat_state *s = p;
    cpu_sum_rows(s->rows, s->cols, s->x, s->out);
}
static enn_status rec_l2(enn_recorder *rec, void *p)
{
    flat_state *s = p;
    return enn_l2_norm(rec, s->n, V(s->bx), V(s->bws), V(s->bout));
}
static void cpu_l2(void *p)
{
    flat_state *s = p;
    s->norm = cpu_l2_norm(s->n, s->x);
}
static enn_status rec_dropout(enn_recorder *rec, void *p)
{
    flat_state *s = p;
    return enn_dropout_forward(rec, V(s->bout), V(s->bx), (uint32_t)s->n, &s->dp);
}
static void cpu_dropout(void *p)
{
    flat_state *s = p;
    cpu_dropout_forward(s->n, s->x, s->dp.p, s->dp.seed, s->dp.stream, s->out);
}
/* p (x), m, v change with every run on both sides; only the first run is checked */
static enn_status rec_adam(enn_recorder *rec, void *p)
{
    flat_state *s = p;
    return enn_adam_update(rec, s->table, &s->hp, V(s->bx), V(s->bg), V(s->bm), V(s->bv));
}
static void cpu_adam_(void *p)
{
    flat_state *s = p;
    cpu_adam(s->n, s->x, s->g, s->m, s->v, s->alpha, s->hp.beta1, s->hp.beta2, s->hp.epsilon);
}

/* n: B*T*h = 458752 (one layer's activations over a sequence), a small one, and 16M on GPUs */
static size_t elementwise_n(size_t i)
{
    static const size_t n[] = {16384, 458752, 16u << 20};
    return n[i];
}

static int flat_setup(arena *ar, flat_state *s, size_t n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->x = host_rand(ar, n, -2, 2); s->y = host_rand(ar, n, -1, 1); s->g = host_rand(ar, n, -1, 1);
    s->out = host_alloc(ar, n * 4); s->dx = host_alloc(ar, n * 4);
    s->bx = dev_buf(ar, s->x, n * 4); s->by = dev_buf(ar, s->y, n * 4); s->bg = dev_buf(ar, s->g, n * 4);
    s->bout = dev_buf(ar, NULL, n * 4); s->bdx = dev_buf(ar, NULL, n * 4);
    return arena_ok(ar);
}

static int elementwise_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    flat_state s;
    size_t n = elementwise_n(i);
    if (!flat_setup(ar, &s, n)) return 1;
    bench_case c = {.st = &s};
    snprintf(c.shape, sizeof c.shape, "n%zu", n);
    /* bytes: a, b read, y written */
    bench_case a = c;
    a.kernel = "add", a.bytes = 12.0 * n, a.record = rec_add, a.cpu = cpu_add_;
    add_check(&a, s.bout, s.out, n, 0);
    int rc = run_case(ctx, rec, o, &a);
    /* bytes: x read, y written */
    bench_case f = c;
    f.kernel = "tanh_fwd", f.bytes = 8.0 * n, f.record = rec_tanh_fwd, f.cpu = cpu_tanh_fwd;
    add_check(&f, s.bout, s.out, n, 0);
    rc |= run_case(ctx, rec, o, &f);
    /* bytes: y, dy read, dx written */
    bench_case b = c;
    b.kernel = "tanh_bwd", b.bytes = 12.0 * n, b.record = rec_tanh_bwd, b.cpu = cpu_tanh_bwd;
    add_check(&b, s.bdx, s.dx, n, 0);
    return rc | run_case(ctx, rec, o, &b);
}

int bench_elementwise(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, is_cpu_device(ctx) ? 2 : 3, elementwise_one);
}

static int sum_rows_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    /* bias gradients: {B rows, h}, {B*T rows, h}, the LM's {4096 tokens, 8192 classes} on GPUs */
    static const uint32_t shapes[][2] = {{128, 128}, {3584, 128}, {4096, 8192}};
    flat_state s;
    if (!flat_setup(ar, &s, (size_t)shapes[i][0] * shapes[i][1])) return 1;
    s.rows = shapes[i][0], s.cols = shapes[i][1];
    bench_case c = {.st = &s, .kernel = "sum_rows", .record = rec_sum_rows, .cpu = cpu_sum_rows_};
    snprintf(c.shape, sizeof c.shape, "%ux%u", s.rows, s.cols);
    c.bytes = 4.0 * ((double)s.n + s.cols);   /* x read, out written */
    add_check(&c, s.bout, s.out, s.cols, 0);
    return run_case(ctx, rec, o, &c);
}

int bench_sum_rows(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, is_cpu_device(ctx) ? 2 : 3, sum_rows_one);
}

/* parameter counts: a small model, 1M, and 24.5M on GPUs (the LM's) */
static size_t params_n(size_t i)
{
    static const size_t n[] = {65536, 1u << 20, 24500000};
    return n[i];
}

static int l2_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    flat_state s;
    size_t n = params_n(i);
    if (!flat_setup(ar, &s, n)) return 1;
    s.bws = dev_buf(ar, NULL, enn_l2_norm_workspace_bytes(n));
    if (!arena_ok(ar)) return 1;
    bench_case c = {.st = &s, .kernel = "l2_norm", .record = rec_l2, .cpu = cpu_l2, .bytes = 4.0 * n};  /* x read */
    snprintf(c.shape, sizeof c.shape, "n%zu", n);
    add_check(&c, s.bout, &s.norm, 1, 0);
    return run_case(ctx, rec, o, &c);
}

int bench_l2_norm(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, is_cpu_device(ctx) ? 2 : 3, l2_one);
}

static int dropout_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    flat_state s;
    size_t n = elementwise_n(i);
    if (!flat_setup(ar, &s, n)) return 1;
    s.dp = (enn_dropout_params){.p = 0.1f, .seed = 1234, .stream = 5};
    /* bytes: x read, y written (the keep bits are computed, Philox, not read) */
    bench_case c = {.st = &s, .kernel = "dropout_fwd", .record = rec_dropout, .cpu = cpu_dropout, .bytes = 8.0 * n};
    snprintf(c.shape, sizeof c.shape, "n%zu p0.1", n);
    add_check(&c, s.bout, s.out, n, 0);
    return run_case(ctx, rec, o, &c);
}

int bench_dropout(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, is_cpu_device(ctx) ? 2 : 3, dropout_one);
}

static int adam_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    flat_state s;
    size_t n = params_n(i);
    if (!flat_setup(ar, &s, n)) return 1;
    /* tensors of at most 1M floats, as a model's weight matrices */
    uint32_t tensors = (uint32_t)((n + (1u << 20) - 1) >> 20);
    enn_param_range *ranges = host_alloc(ar, tensors * sizeof *ranges);
    s.m = host_rand(ar, n, -0.1f, 0.1f);
    s.v = host_rand(ar, n, 0, 0.01f);
    if (!arena_ok(ar)) return 1;
    for (uint32_t t = 0; t < tensors; t++) {
        size_t first = (size_t)t << 20;
        ranges[t] = (enn_param_range){(uint32_t)first, (uint32_t)(n - first < (1u << 20) ? n - first : 1u << 20), 0};
    }
    s.bm = dev_buf(ar, s.m, n * 4); s.bv = dev_buf(ar, s.v, n * 4);
    if (!arena_ok(ar)) return 1;
    if (enn_param_table_create(ctx, ranges, tensors, &s.table)) {
        fprintf(stderr, "enn bench: %s\n", enn_last_error());
        return 1;
    }
    s.hp = enn_adam_params_keras();
    s.hp.step = 10;
    s.alpha = (float)(s.hp.lr * sqrt(1.0 - pow(s.hp.beta2, 10)) / (1.0 - pow(s.hp.beta1, 10)));
    /* bytes: p, g, m, v read; p, m, v written */
    bench_case c = {.st = &s, .kernel = "adam", .record = rec_adam, .cpu = cpu_adam_, .bytes = 28.0 * n};
    snprintf(c.shape, sizeof c.shape, "n%zu t%u", n, tensors);
    /* a step moves p by about lr = 1e-3 against |p| <= 2: p's check needs a tolerance
     * well below the step, m and v's the usual one */
    add_check(&c, s.bx, s.x, n, 1e-6);
    add_check(&c, s.bm, s.m, n, 0);
    add_check(&c, s.bv, s.v, n, 0);
    int rc = run_case(ctx, rec, o, &c);
    enn_param_table_destroy(ctx, s.table);
    return rc;
}

int bench_adam(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, is_cpu_device(ctx) ? 2 : 3, adam_one);
}
