/* enn bench ops: the kernel families besides GEMM. Each family sets up its shapes
 * (the paper's: B=128, T=28, h=128, N=64, LM R=4096 tokens, plus a smaller one; bigger
 * ones on GPUs, smaller on CPU devices such as lavapipe) and runs a bench_case per
 * kernel: a function that records the op, a plain C loop computing the same in float
 * (bench_cpu.c), the bytes moved or the flops counted, and the outputs to compare.
 *
 * Each case: one device run (compiles, warms up, and is the result checked against the
 * CPU loop's), then enough back-to-back runs in one recording to fill --time, timed by
 * timestamp queries (the sum over the case's dispatches) and by the host clock
 * (submit to fence), then the CPU loop repeated for --time. Rates: GB/s from the bytes
 * a kernel must move (inputs read once + outputs written once, stated per kernel), or
 * GFLOP/s for the memory path's kernels, which are compute-bound at the paper's shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_cpu.h"
#include "core/error.h"
#include "core/recorder.h"
#include "enn.h"
#include "ops/adam.h"
#include "ops/cosine_attention.h"
#include "ops/dropout.h"
#include "ops/effective_memory.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/hebbian_trace.h"
#include "ops/layer_norm.h"
#include "ops/memory_step.h"
#include "ops/pooling.h"
#include "ops/recurrence.h"
#include "ops/gemm.h"
#include "ops/reduce.h"
#include "ops/softmax_cross_entropy.h"

/* ---------------------------------------------------------------- cases */

#define MAX_CHECKS 4
#define DEFAULT_TOL 1e-3 /* fp32 with different summation orders; errors are relative to max |ref| */

typedef struct bench_check {
    const enn_buffer *buf;   /* the device output (floats from offset 0) */
    const float *ref;        /* the CPU loop's */
    size_t n;
    double tol;              /* 0: DEFAULT_TOL */
} bench_check;

typedef struct bench_case {
    const char *kernel;
    char shape[64];
    double bytes, flops;     /* per run; flops > 0: the rate is GFLOP/s, else GB/s */
    enn_status (*record)(enn_recorder *rec, void *st);
    void (*cpu)(void *st);
    void *st;
    bench_check checks[MAX_CHECKS];
    int nchecks;
} bench_case;

static void add_check(bench_case *c, const enn_buffer *buf, const float *ref, size_t n, double tol)
{
    c->checks[c->nchecks++] = (bench_check){buf, ref, n, tol};
}

static enn_status time_device(enn_recorder *rec, const bench_case *c, uint32_t reps, double *gpu_ms, double *host_ms)
{
    ENN_TRY(enn_recorder_begin(rec));
    for (uint32_t r = 0; r < reps; r++) ENN_TRY(c->record(rec, c->st));
    double t0 = bench_now_s();
    ENN_TRY(enn_recorder_run(rec));
    *host_ms = (bench_now_s() - t0) * 1e3 / reps;
    const enn_timing *tm;
    uint32_t n = enn_recorder_timings(rec, &tm);
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += tm[i].gpu_ms;
    *gpu_ms = sum / reps;
    return ENN_OK;
}

/* Runs, checks, times and prints one case; 0 when it ran and matched. */
static int run_case(enn_context *ctx, enn_recorder *rec, const bench_options *o, const bench_case *c)
{
    double gpu_ms, host_ms;
    int bad = 0;
    double worst = 0;
    if (time_device(rec, c, 1, &gpu_ms, &host_ms)) goto fail;
    c->cpu(c->st);
    for (int i = 0; i < c->nchecks; i++) {
        const bench_check *k = &c->checks[i];
        float *dev = malloc(k->n * sizeof *dev);
        if (!dev) { fprintf(stderr, "enn bench: out of host memory\n"); return 1; }
        if (enn_buffer_download(ctx, k->buf, 0, dev, k->n * sizeof *dev)) { free(dev); goto fail; }
        double e = bench_rel_error(dev, k->ref, k->n);
        free(dev);
        if (!(e <= (k->tol > 0 ? k->tol : DEFAULT_TOL))) bad = 1;   /* NaN fails too */
        if (!(e <= worst)) worst = e;
    }
    uint32_t reps = (uint32_t)fmin(fmax(o->target_s / (host_ms * 1e-3), 1), 500);
    if (time_device(rec, c, reps, &gpu_ms, &host_ms)) goto fail;
    int cpu_reps = 0;
    double t0 = bench_now_s(), t;
    do {
        c->cpu(c->st);
        cpu_reps++;
    } while ((t = bench_now_s() - t0) < o->target_s);
    double work = c->flops > 0 ? c->flops : c->bytes, cpu_ms = t * 1e3 / cpu_reps;
    bench_row r = {.kernel = c->kernel, .variant = "-", .gpu_ms = gpu_ms, .host_ms = host_ms,
                   .gpu_rate = gpu_ms > 0 ? work / (gpu_ms * 1e-3) * 1e-9 : 0,
                   .host_rate = work / (host_ms * 1e-3) * 1e-9, .cpu_ms = cpu_ms,
                   .cpu_rate = work / (cpu_ms * 1e-3) * 1e-9, .unit = c->flops > 0 ? "GF/s" : "GB/s"};
    snprintf(r.shape, sizeof r.shape, "%s", c->shape);
    snprintf(r.check, sizeof r.check, "%s %.1e", bad ? "BAD" : "ok", worst);
    bench_print_row(&r);
    if (bad) fprintf(stderr, "enn bench: %s %s: the device's result differs from the CPU loop's (error %.3g)\n",
                     c->kernel, c->shape, worst);
    return bad;
fail:
    fprintf(stderr, "enn bench: %s %s: %s\n", c->kernel, c->shape, enn_last_error());
    return 1;
}

/* ---------------------------------------------------------------- allocations */

/* Host arrays and device buffers of one shape, freed together. */
typedef struct arena {
    enn_context *ctx;
    enn_buffer *dev[32];
    void *host[48];
    int ndev, nhost, failed;
    uint64_t seed;
} arena;

static void *host_alloc(arena *a, size_t bytes)
{
    void *p = a->nhost < 48 ? calloc(1, bytes ? bytes : 1) : NULL;
    if (!p) { a->failed = 1; return NULL; }
    return a->host[a->nhost++] = p;
}

/* n floats uniform in [lo, hi). */
static float *host_rand(arena *a, size_t n, float lo, float hi)
{
    float *x = host_alloc(a, n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) {
        a->seed = a->seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)((a->seed >> 40) & 0xffffff) / 16777216.0f;
    }
    return x;
}

static uint32_t *host_ids(arena *a, size_t n, uint32_t below)
{
    uint32_t *x = host_alloc(a, n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) {
        a->seed = a->seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (uint32_t)((a->seed >> 32) % below);
    }
    return x;
}

/* A device buffer of `bytes` holding `data` (zeros when NULL). */
static enn_buffer *dev_buf(arena *a, const void *data, size_t bytes)
{
    enn_buffer *b = NULL;
    if (a->failed || a->ndev == 32 || enn_buffer_create(a->ctx, bytes, &b)) { a->failed = 1; return NULL; }
    a->dev[a->ndev++] = b;
    void *zeros = data ? NULL : calloc(1, bytes);
    if ((!data && !zeros) || enn_buffer_upload(a->ctx, b, 0, data ? data : zeros, bytes)) a->failed = 1;
    free(zeros);
    return b;
}

static void arena_free(arena *a)
{
    for (int i = 0; i < a->ndev; i++) enn_buffer_destroy(a->ctx, a->dev[i]);
    for (int i = 0; i < a->nhost; i++) free(a->host[i]);
    a->ndev = a->nhost = a->failed = 0;
}

static int arena_ok(arena *a)
{
    if (!a->failed) return 1;
    fprintf(stderr, "enn bench: setting up buffers failed: %s\n", enn_last_error());
    return 0;
}

static int is_cpu_device(const enn_context *ctx) { return ctx->caps.device_type == ENN_DEVICE_CPU; }

/* ---------------------------------------------------------------- memory path */

typedef struct mem_state {
    enn_memory_shape s;
    float tau_e, alpha;
    enn_hebbian_params hp;
    /* host inputs */
    float *z, *M, *H, *E, *a_in, *dm, *dHn;
    /* CPU outputs and scratch */
    float *a, *m, *dz, *dE, *Hn, *dH, *da, *dz2, *E2, *dM, *dH2, *scratch;
    /* device */
    enn_buffer *bz, *bM, *bH, *bE, *ba_in, *bdm, *bdHn, *ba, *bm, *bdz, *bdE, *bws, *bHn, *bdH, *bda, *bdz2,
        *bws2, *bE2, *bdM, *bdH2;
} mem_state;

static int mem_setup(arena *ar, mem_state *st, uint32_t B, uint32_t N, uint32_t h, int per_sample)
{
    memset(st, 0, sizeof *st);
    st->s = (enn_memory_shape){B, N, h, per_sample};
    st->tau_e = 0.5f;
    st->alpha = 0.1f;
    st->hp = (enn_hebbian_params){.eta = 0.05f, .clip = 0.1f};
    size_t Bh = (size_t)B * h, BN = (size_t)B * N, Nh = (size_t)N * h, Th = (per_sample ? B : 1) * Nh;
    st->z = host_rand(ar, Bh, -1, 1);
    st->M = host_rand(ar, Nh, -0.5f, 0.5f);
    /* |H| <= 0.05 keeps the trace's pre-clip values away from +-clip, so the backward's
     * mask cannot flip between device and CPU on a rounding difference */
    st->H = host_rand(ar, Th, -0.05f, 0.05f);
    st->E = host_alloc(ar, Th * 4);
    st->a_in = host_alloc(ar, BN * 4);
    st->dm = host_rand(ar, Bh, -1, 1);
    st->dHn = host_rand(ar, Th, -1, 1);
    st->a = host_alloc(ar, BN * 4); st->m = host_alloc(ar, Bh * 4);
    st->dz = host_alloc(ar, Bh * 4); st->dE = host_alloc(ar, Nh * 4);
    st->Hn = host_alloc(ar, Th * 4); st->dH = host_alloc(ar, Th * 4);
    st->da = host_alloc(ar, BN * 4); st->dz2 = host_alloc(ar, Bh * 4);
    st->E2 = host_alloc(ar, Th * 4); st->dM = host_alloc(ar, Nh * 4); st->dH2 = host_alloc(ar, Th * 4);
    st->scratch = host_alloc(ar, (2 * Nh + 2 * N + 2 * h) * 4);
    if (ar->failed) return arena_ok(ar);
    cpu_effective_memory_forward(per_sample ? B : 1, Nh, st->M, st->H, st->alpha, st->E);
    if (!per_sample) cpu_cosine_attention_forward(B, N, h, st->z, st->E, st->tau_e, st->a_in, st->m);
    st->bz = dev_buf(ar, st->z, Bh * 4); st->bM = dev_buf(ar, st->M, Nh * 4); st->bH = dev_buf(ar, st->H, Th * 4);
    st->bE = dev_buf(ar, st->E, Th * 4); st->ba_in = dev_buf(ar, st->a_in, BN * 4);
    st->bdm = dev_buf(ar, st->dm, Bh * 4); st->bdHn = dev_buf(ar, st->dHn, Th * 4);
    st->ba = dev_buf(ar, NULL, BN * 4); st->bm = dev_buf(ar, NULL, Bh * 4);
    st->bdz = dev_buf(ar, NULL, Bh * 4); st->bdE = dev_buf(ar, NULL, Th * 4);
    st->bws = dev_buf(ar, NULL, enn_cosine_attention_workspace_bytes(st->s));
    st->bHn = dev_buf(ar, NULL, Th * 4); st->bdH = dev_buf(ar, NULL, Th * 4);
    st->bda = dev_buf(ar, NULL, BN * 4); st->bdz2 = dev_buf(ar, NULL, Bh * 4);
    st->bws2 = dev_buf(ar, NULL, enn_hebbian_trace_workspace_bytes(st->s));
    st->bE2 = dev_buf(ar, NULL, Th * 4); st->bdM = dev_buf(ar, NULL, Nh * 4); st->bdH2 = dev_buf(ar, NULL, Th * 4);
    return arena_ok(ar);
}

#define V(b) enn_view_of(b)

static enn_status rec_cos_fwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_cosine_attention_forward(rec, st->s, V(st->ba), V(st->bm), V(st->bz), V(st->bE), st->tau_e);
}
static void cpu_cos_fwd(void *p)
{
    mem_state *st = p;
    cpu_cosine_attention_forward(st->s.B, st->s.N, st->s.h, st->z, st->E, st->tau_e, st->a, st->m);
}
static enn_status rec_cos_bwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    enn_view none = {0};
    return enn_cosine_attention_backward(rec, st->s, V(st->bdz), V(st->bdE), V(st->bws), V(st->bdm), none, V(st->bz),
                                         V(st->bE), V(st->ba_in), st->tau_e, 0, 0);
}
static void cpu_cos_bwd(void *p)
{
    mem_state *st = p;
    cpu_cosine_attention_backward(st->s.B, st->s.N, st->s.h, st->z, st->E, st->tau_e, st->dm, st->dz, st->dE,
                                  st->scratch);
}
static enn_status rec_hebb_fwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_hebbian_trace_forward(rec, st->s, V(st->bHn), V(st->bH), V(st->ba_in), V(st->bz), &st->hp);
}
static void cpu_hebb_fwd(void *p)
{
    mem_state *st = p;
    cpu_hebbian_trace_forward(st->s.B, st->s.N, st->s.h, st->H, st->a_in, st->z, st->hp.eta, st->hp.clip, st->Hn);
}
static enn_status rec_hebb_bwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_hebbian_trace_backward(rec, st->s, V(st->bdH), V(st->bda), V(st->bdz2), V(st->bws2), V(st->bdHn),
                                      V(st->bH), V(st->ba_in), V(st->bz), &st->hp, 0, 0, 0);
}
static void cpu_hebb_bwd(void *p)
{
    mem_state *st = p;
    cpu_hebbian_trace_backward(st->s.B, st->s.N, st->s.h, st->H, st->a_in, st->z, st->hp.eta, st->hp.clip, st->dHn,
                               st->dH, st->da, st->dz2, st->scratch);
}
static enn_status rec_mem_step(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_memory_step_forward(rec, st->s, V(st->ba), V(st->bm), V(st->bHn), V(st->bz), V(st->bM), V(st->bH),
                                   st->alpha, st->tau_e, &st->hp);
}
static void cpu_mem_step(void *p)
{
    mem_state *st = p;
    uint32_t B = st->s.B, N = st->s.N, h = st->s.h;
    cpu_effective_memory_forward(1, (size_t)N * h, st->M, st->H, st->alpha, st->E2);
    cpu_cosine_attention_forward(B, N, h, st->z, st->E2, st->tau_e, st->a, st->m);
    cpu_hebbian_trace_forward(B, N, h, st->H, st->a, st->z, st->hp.eta, st->hp.clip, st->Hn);
}
static enn_status rec_eff_fwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;
    return enn_effective_memory_forward(rec, st->s, V(st->bE2), V(st->bM), V(st->bH), st->alpha);
}
static void cpu_eff_fwd(void *p)
{
    mem_state *st = p;
    cpu_effective_memory_forward(st->s.per_sample ? st->s.B : 1, (size_t)st->s.N * st->s.h, st->M, st->H, st->alpha,
                                 st->E2);
}
static enn_status rec_eff_bwd(enn_recorder *rec, void *p)
{
    mem_state *st = p;   /* dE: the random dH_new, shaped like H */
    return enn_effective_memory_backward(rec, st->s, V(st->bdM), V(st->bdH2), V(st->bdHn), st->alpha, 0, 0);
}
static void cpu_eff_bwd(void *p)
{
    mem_state *st = p;
    cpu_effective_memory_backward(st->s.per_sample ? st->s.B : 1, (size_t)st->s.N * st->s.h, st->dHn, st->alpha,
                                  st->dM, st->dH2);
}

typedef struct mem_shape { uint32_t B, N, h; } mem_shape;
/* the paper's step (B=128, N=64, h=128) and a smaller one */
static const mem_shape mem_shapes[] = {{16, 16, 32}, {128, 64, 128}};

/* family: which of the memory path's kernels (1 cosine attention, 2 Hebbian, 3 fused step) */
static int bench_memory_family(enn_context *ctx, const bench_options *o, int family)
{
    enn_recorder *rec = NULL;
    if (enn_recorder_create(ctx, &rec)) { fprintf(stderr, "enn bench: %s\n", enn_last_error()); return 1; }
    enn_recorder_set_timestamps(rec, 1);
    arena ar = {.ctx = ctx, .seed = 7};
    int rc = 0;
    size_t count = o->quick ? 1 : sizeof mem_shapes / sizeof mem_shapes[0];
    for (size_t i = 0; i < count && !rc; i++) {
        uint32_t B = mem_shapes[i].B, N = mem_shapes[i].N, h = mem_shapes[i].h;
        mem_state st;
        if (!mem_setup(&ar, &st, B, N, h, 0)) { rc = 1; break; }
        double BNh = (double)B * N * h, Bh = (double)B * h, BN = (double)B * N, Nh = (double)N * h;
        bench_case c = {.st = &st};
        snprintf(c.shape, sizeof c.shape, "B%u N%u h%u", B, N, h);
        if (family == 1) {
            /* flops: similarities 2BNh + retrieval 2BNh (the norms are lower order) */
            bench_case f = c;
            f.kernel = "cos_attn_fwd", f.flops = 4 * BNh, f.record = rec_cos_fwd, f.cpu = cpu_cos_fwd;
            add_check(&f, st.ba, st.a, (size_t)BN, 0);
            add_check(&f, st.bm, st.m, (size_t)Bh, 0);
            rc |= run_case(ctx, rec, o, &f);
            /* flops: recomputed similarities 2BNh, da 2BNh, dE via m 2BNh, dz and dE via the
             * similarities 4BNh */
            bench_case b = c;
            b.kernel = "cos_attn_bwd", b.flops = 10 * BNh, b.record = rec_cos_bwd, b.cpu = cpu_cos_bwd;
            add_check(&b, st.bdz, st.dz, (size_t)Bh, 0);
            add_check(&b, st.bdE, st.dE, (size_t)Nh, 0);
            rc |= run_case(ctx, rec, o, &b);
        } else if (family == 2) {
            /* flops: the batch's outer products 2BNh */
            bench_case f = c;
            f.kernel = "hebbian_fwd", f.flops = 2 * BNh, f.record = rec_hebb_fwd, f.cpu = cpu_hebb_fwd;
            add_check(&f, st.bHn, st.Hn, (size_t)Nh, 0);
            rc |= run_case(ctx, rec, o, &f);
            /* flops: recomputed outer products 2BNh, da 2BNh, dz 2BNh */
            bench_case b = c;
            b.kernel = "hebbian_bwd", b.flops = 6 * BNh, b.record = rec_hebb_bwd, b.cpu = cpu_hebb_bwd;
            add_check(&b, st.bdH, st.dH, (size_t)Nh, 0);
            add_check(&b, st.bda, st.da, (size_t)BN, 0);
            add_check(&b, st.bdz2, st.dz2, (size_t)Bh, 0);
            rc |= run_case(ctx, rec, o, &b);
        } else {
            /* flops: attention 4BNh + the trace's outer products 2BNh */
            bench_case f = c;
            f.kernel = "memory_step", f.flops = 6 * BNh, f.record = rec_mem_step, f.cpu = cpu_mem_step;
            add_check(&f, st.ba, st.a, (size_t)BN, 0);
            add_check(&f, st.bm, st.m, (size_t)Bh, 0);
            add_check(&f, st.bHn, st.Hn, (size_t)Nh, 0);
            rc |= run_case(ctx, rec, o, &f);
        }
        arena_free(&ar);
    }
    enn_recorder_destroy(rec);
    return rc;
}

int bench_cosine_attention(enn_context *ctx, const bench_options *o) { return bench_memory_family(ctx, o, 1); }
int bench_hebbian_trace(enn_context *ctx, const bench_options *o) { return bench_memory_family(ctx, o, 2); }
int bench_memory_step(enn_context *ctx, const bench_options *o) { return bench_memory_family(ctx, o, 3); }

int bench_effective_memory(enn_context *ctx, const bench_options *o)
{
    enn_recorder *rec = NULL;
    if (enn_recorder_create(ctx, &rec)) { fprintf(stderr, "enn bench: %s\n", enn_last_error()); return 1; }
    enn_recorder_set_timestamps(rec, 1);
    arena ar = {.ctx = ctx, .seed = 8};
    int rc = 0;
    /* shared trace (E is [N,h]) and per-sample (E is [B,N,h], the op's real traffic) */
    static const struct { uint32_t B, N, h; int ps; } shapes[] = {{16, 16, 32, 1}, {128, 64, 128, 0}, {128, 64, 128, 1}};
    size_t count = o->quick ? 1 : sizeof shapes / sizeof shapes[0];
    for (size_t i = 0; i < count && !rc; i++) {
        mem_state st;
        if (!mem_setup(&ar, &st, shapes[i].B, shapes[i].N, shapes[i].h, shapes[i].ps)) { rc = 1; break; }
        double Nh = (double)shapes[i].N * shapes[i].h, copies = shapes[i].ps ? shapes[i].B : 1;
        bench_case c = {.st = &st};
        if (shapes[i].ps) snprintf(c.shape, sizeof c.shape, "B%u N%u h%u ps", shapes[i].B, shapes[i].N, shapes[i].h);
        else snprintf(c.shape, sizeof c.shape, "N%u h%u", shapes[i].N, shapes[i].h);
        /* bytes: M read, H read, E written */
        bench_case f = c;
        f.kernel = "eff_mem_fwd", f.bytes = 4 * (Nh + 2 * copies * Nh), f.record = rec_eff_fwd, f.cpu = cpu_eff_fwd;
        add_check(&f, st.bE2, st.E2, (size_t)(copies * Nh), 0);
        rc |= run_case(ctx, rec, o, &f);
        /* bytes: dE read, dH written, dM written */
        bench_case b = c;
        b.kernel = "eff_mem_bwd", b.bytes = 4 * (2 * copies * Nh + Nh), b.record = rec_eff_bwd, b.cpu = cpu_eff_bwd;
        add_check(&b, st.bdM, st.dM, (size_t)Nh, 0);
        add_check(&b, st.bdH2, st.dH2, (size_t)(copies * Nh), 0);
        rc |= run_case(ctx, rec, o, &b);
        arena_free(&ar);
    }
    enn_recorder_destroy(rec);
    return rc;
}

/* A family's loop over shapes: creates the recorder, runs `one` per shape (which sets
 * up its arena and runs its cases), frees each shape's arena. */
typedef int (*shape_fn)(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t shape);

static int for_shapes(enn_context *ctx, const bench_options *o, size_t count, shape_fn one)
{
    enn_recorder *rec = NULL;
    if (enn_recorder_create(ctx, &rec)) { fprintf(stderr, "enn bench: %s\n", enn_last_error()); return 1; }
    enn_recorder_set_timestamps(rec, 1);
    arena ar = {.ctx = ctx, .seed = 9};
    int rc = 0;
    if (o->quick) count = 1;
    for (size_t i = 0; i < count && !rc; i++) {
        rc = one(ctx, rec, o, &ar, i);
        arena_free(&ar);
    }
    enn_recorder_destroy(rec);
    return rc;
}

/* ---------------------------------------------------------------- layer norm */

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

/* ---------------------------------------------------------------- softmax cross-entropy */

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

/* ---------------------------------------------------------------- embedding */

typedef struct emb_state {
    uint32_t rows, dim, vocab;
    float *table, *out, *dout, *dtable;
    uint32_t *ids;
    enn_buffer *btable, *bids, *bout, *bdout, *bws, *bdtable;
} emb_state;

static enn_status rec_emb_fwd(enn_recorder *rec, void *p)
{
    emb_state *s = p;
    return enn_embedding_forward(rec, s->rows, s->dim, s->vocab, V(s->btable), V(s->bids), V(s->bout));
}
static void cpu_emb_fwd(void *p)
{
    emb_state *s = p;
    cpu_embedding_forward(s->rows, s->dim, s->table, s->ids, s->out);
}
/* dtable accumulates over repeated runs on both sides; only the first run is checked */
static enn_status rec_emb_bwd(enn_recorder *rec, void *p)
{
    emb_state *s = p;
    return enn_embedding_backward(rec, s->rows, s->dim, s->vocab, V(s->bids), V(s->bdout), V(s->bws), V(s->bdtable));
}
static void cpu_emb_bwd(void *p)
{
    emb_state *s = p;
    cpu_embedding_backward(s->rows, s->dim, s->ids, s->dout, s->dtable);
}

static int emb_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    /* {rows, dim, vocab}: a small one, and the LM's R=4096 tokens, h=128, over a word
     * vocabulary (188590 on GPUs, 8192 on CPU devices) */
    emb_state s = {.rows = i ? 4096 : 256, .dim = i ? 128 : 64, .vocab = i ? (is_cpu_device(ctx) ? 8192 : 188590) : 1000};
    size_t VD = (size_t)s.vocab * s.dim, RD = (size_t)s.rows * s.dim;
    s.table = host_rand(ar, VD, -1, 1);
    s.ids = host_ids(ar, s.rows, s.vocab);
    s.dout = host_rand(ar, RD, -1, 1);
    s.out = host_alloc(ar, RD * 4); s.dtable = host_alloc(ar, VD * 4);
    s.btable = dev_buf(ar, s.table, VD * 4); s.bids = dev_buf(ar, s.ids, s.rows * 4);
    s.bout = dev_buf(ar, NULL, RD * 4); s.bdout = dev_buf(ar, s.dout, RD * 4);
    s.bws = dev_buf(ar, NULL, enn_embedding_backward_workspace_bytes(s.rows)); s.bdtable = dev_buf(ar, NULL, VD * 4);
    if (!arena_ok(ar)) return 1;
    /* the distinct ids: the rows of dtable the backward reads and writes */
    unsigned char *seen = host_alloc(ar, s.vocab);
    if (!seen) return !arena_ok(ar);
    double distinct = 0;
    for (uint32_t r = 0; r < s.rows; r++) distinct += !seen[s.ids[r]], seen[s.ids[r]] = 1;
    bench_case c = {.st = &s};
    snprintf(c.shape, sizeof c.shape, "R%u d%u V%u", s.rows, s.dim, s.vocab);
    /* bytes: ids read, one table row read and one out row written per id */
    bench_case f = c;
    f.kernel = "embedding_fwd", f.bytes = 4.0 * s.rows + 8.0 * RD, f.record = rec_emb_fwd, f.cpu = cpu_emb_fwd;
    add_check(&f, s.bout, s.out, RD, 0);
    int rc = run_case(ctx, rec, o, &f);
    /* bytes: ids, dout read; each distinct id's dtable row read and written */
    bench_case b = c;
    b.kernel = "embedding_bwd", b.bytes = 4.0 * s.rows + 4.0 * RD + 8.0 * distinct * s.dim;
    b.record = rec_emb_bwd, b.cpu = cpu_emb_bwd;
    add_check(&b, s.bdtable, s.dtable, VD, 0);
    return rc | run_case(ctx, rec, o, &b);
}

int bench_embedding(enn_context *ctx, const bench_options *o) { return for_shapes(ctx, o, 2, emb_one); }

/* ---------------------------------------------------------------- flat kernels */

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

/* ---------------------------------------------------------------- attention pooling */

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

/* ---------------------------------------------------------------- ENN recurrence */

/* The cell's h-dependent loop with layer norm: one dispatch per pass (enn_recurrence) and,
 * as its peer in the same run (recur_*_loop), the per-step loop it replaces (3 dispatches a step forward:
 * two GEMMs and a layer norm; 6 backward), both checked against one CPU loop. Here Bp = B
 * and B h 4 is a multiple of 256, so slabs are dense and mean/rstd [T*B] contiguous; the
 * per-step loop keeps its statistics in per-step slabs, as enn_cell does. Each run first
 * copies the inputs it updates in place (u, dhs) from pristine copies, so runs repeat. */
typedef struct recur_state {
    uint32_t T, B, h;
    uint64_t sh, su, srow; /* slab bytes: h-wide, 3h-wide, per-step statistics */
    float *u_in, *h0, *W_uh, *W_o, *b_o, *gain, *bias, *dhs_in;
    float *u, *hs, *hp, *mean, *rstd, *dhs, *dhp, *du;
    enn_buffer *bu_in, *bW_uh, *bW_o, *bb_o, *bgain, *bbias, *bdhs_in, *bu, *bhs, *bhp, *bmean, *brstd, *bdhs, *bdhp,
        *bdu, *bmean_s, *brstd_s, *bdgain, *bdbias;
} recur_state;

static enn_recurrence_shape recur_shape(const recur_state *s)
{
    return (enn_recurrence_shape){.T = s->T, .B = s->B, .Bp = s->B, .h = s->h, .layer_norm = 1, .eps = 1e-6f};
}
static enn_recurrence_seq recur_seq(const enn_buffer *b, uint64_t slab) { return (enn_recurrence_seq){V(b), slab}; }

static enn_status rec_recur_fwd(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    enn_recurrence_shape shape = recur_shape(s);
    ENN_TRY(enn_record_copy(rec, s->bu_in, 0, s->bu, 0, s->T * s->su));
    return enn_recurrence_forward(rec, &shape, recur_seq(s->bu, s->su), recur_seq(s->bhs, s->sh),
                                  recur_seq(s->bhp, s->sh), V(s->bmean), V(s->brstd), V(s->bW_uh), V(s->bW_o),
                                  V(s->bb_o), V(s->bgain), V(s->bbias));
}
static enn_status recur_gemm(enn_recorder *rec, enn_view c, enn_view a, enn_view b, int tb, uint32_t m, uint32_t n,
                             uint32_t k, float beta, enn_view bias, enn_activation act)
{
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = a, d.b = b, d.c = c, d.bias = bias, d.m = m, d.n = n, d.k = k, d.trans_b = tb, d.beta = beta, d.act = act;
    d.name = "recurrence_steps";
    return enn_gemm(rec, &d);
}
static enn_status rec_recur_fwd_steps(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    ENN_TRY(enn_record_copy(rec, s->bu_in, 0, s->bu, 0, s->T * s->su));
    for (uint32_t t = 0; t < s->T; t++) {
        enn_view u_t = enn_view_at(s->bu, t * s->su), h_t = enn_view_at(s->bhs, t * s->sh);
        enn_view hp_t = enn_view_at(s->bhp, t * s->sh), h_next = enn_view_at(s->bhs, (t + 1) * s->sh);
        ENN_TRY(recur_gemm(rec, u_t, h_t, V(s->bW_uh), 0, s->B, 3 * s->h, s->h, 1.0f, (enn_view){0}, ENN_ACT_RELU));
        ENN_TRY(recur_gemm(rec, hp_t, u_t, V(s->bW_o), 0, s->B, s->h, 3 * s->h, 0.0f, V(s->bb_o), ENN_ACT_RELU));
        ENN_TRY(enn_layer_norm_forward(rec, h_next, enn_view_at(s->bmean_s, t * s->srow),
                                       enn_view_at(s->brstd_s, t * s->srow), hp_t, V(s->bgain), V(s->bbias), s->B,
                                       s->h, 1e-6f));
    }
    return ENN_OK;
}
static void cpu_recur_fwd(void *p)
{
    recur_state *s = p;
    memcpy(s->u, s->u_in, (size_t)s->T * s->B * 3 * s->h * 4);
    memcpy(s->hs, s->h0, (size_t)s->B * s->h * 4);
    cpu_recurrence_forward(s->T, s->B, s->h, s->W_uh, s->W_o, s->b_o, s->gain, s->bias, 1e-6f, s->u, s->hs, s->hp,
                           s->mean, s->rstd);
}
static enn_status rec_recur_bwd(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    enn_recurrence_shape shape = recur_shape(s);
    ENN_TRY(enn_record_copy(rec, s->bdhs_in, 0, s->bdhs, 0, (s->T + 1) * s->sh));
    return enn_recurrence_backward(rec, &shape, recur_seq(s->bdhs, s->sh), recur_seq(s->bdhp, s->sh),
                                   recur_seq(s->bdu, s->su), recur_seq(s->bu, s->su), recur_seq(s->bhs, s->sh),
                                   recur_seq(s->bhp, s->sh), V(s->bmean), V(s->brstd), V(s->bW_uh), V(s->bW_o),
                                   V(s->bgain));
}
/* As enn_cell's loop (which also sums the layer norm's parameter gradients per step). */
static enn_status rec_recur_bwd_steps(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    uint32_t B = s->B, h = s->h;
    ENN_TRY(enn_record_copy(rec, s->bdhs_in, 0, s->bdhs, 0, (s->T + 1) * s->sh));
    for (uint32_t t = s->T; t-- > 0;) {
        enn_view g = enn_view_at(s->bdhs, (t + 1) * s->sh), dhp_t = enn_view_at(s->bdhp, t * s->sh);
        enn_view u_t = enn_view_at(s->bu, t * s->su), du_t = enn_view_at(s->bdu, t * s->su);
        enn_view hp_t = enn_view_at(s->bhp, t * s->sh);
        ENN_TRY(enn_layer_norm_backward(rec, dhp_t, V(s->bdgain), V(s->bdbias), g, hp_t, V(s->bgain),
                                        enn_view_at(s->bmean_s, t * s->srow), enn_view_at(s->brstd_s, t * s->srow), B,
                                        h, 0.0f, 1.0f));
        ENN_TRY(enn_activation_backward(rec, ENN_ACT_RELU, (uint64_t)B * h, hp_t, dhp_t, 0.0f, dhp_t));
        ENN_TRY(recur_gemm(rec, du_t, dhp_t, V(s->bW_o), 1, B, 3 * h, h, 0.0f, (enn_view){0}, ENN_ACT_NONE));
        ENN_TRY(enn_activation_backward(rec, ENN_ACT_RELU, (uint64_t)B * 3 * h, u_t, du_t, 0.0f, du_t));
        ENN_TRY(recur_gemm(rec, enn_view_at(s->bdhs, t * s->sh), du_t, V(s->bW_uh), 1, B, h, 3 * h, 1.0f, (enn_view){0},
                           ENN_ACT_NONE));
    }
    return ENN_OK;
}
static void cpu_recur_bwd(void *p)
{
    recur_state *s = p;
    memcpy(s->dhs, s->dhs_in, (size_t)(s->T + 1) * s->B * s->h * 4);
    cpu_recurrence_backward(s->T, s->B, s->h, s->W_uh, s->W_o, s->gain, s->u, s->hp, s->mean, s->rstd, s->dhs, s->dhp,
                            s->du);
}

static int recur_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    static const uint32_t shapes[][3] = {{8, 16, 32}, {28, 128, 128}}; /* T, B, h: the paper's second */
    recur_state s = {.T = shapes[i][0], .B = shapes[i][1], .h = shapes[i][2]};
    uint32_t T = s.T, B = s.B, h = s.h;
    size_t Bh = (size_t)B * h, Bw = 3 * Bh, hw = 3 * (size_t)h * h;
    s.sh = Bh * 4, s.su = Bw * 4, s.srow = enn_view_round((uint64_t)B * 4);
    float a = 1 / sqrtf((float)h), ao = 1 / sqrtf(3.0f * h);
    s.u_in = host_rand(ar, T * Bw, -1, 1); s.h0 = host_rand(ar, Bh, -1, 1);
    s.W_uh = host_rand(ar, hw, -a, a); s.W_o = host_rand(ar, hw, -ao, ao); s.b_o = host_rand(ar, h, -0.3f, 0.5f);
    s.gain = host_rand(ar, h, 0.5f, 1.5f); s.bias = host_rand(ar, h, -0.5f, 0.5f);
    s.dhs_in = host_rand(ar, (T + 1) * Bh, -1, 1);
    s.u = host_alloc(ar, T * Bw * 4); s.hs = host_alloc(ar, (T + 1) * Bh * 4); s.hp = host_alloc(ar, T * Bh * 4);
    s.mean = host_alloc(ar, (size_t)T * B * 4); s.rstd = host_alloc(ar, (size_t)T * B * 4);
    s.dhs = host_alloc(ar, (T + 1) * Bh * 4); s.dhp = host_alloc(ar, T * Bh * 4); s.du = host_alloc(ar, T * Bw * 4);
    s.bu_in = dev_buf(ar, s.u_in, T * Bw * 4); s.bW_uh = dev_buf(ar, s.W_uh, hw * 4); s.bW_o = dev_buf(ar, s.W_o, hw * 4);
    s.bb_o = dev_buf(ar, s.b_o, h * 4); s.bgain = dev_buf(ar, s.gain, h * 4); s.bbias = dev_buf(ar, s.bias, h * 4);
    s.bdhs_in = dev_buf(ar, s.dhs_in, (T + 1) * Bh * 4); s.bu = dev_buf(ar, NULL, T * Bw * 4);
    s.bhs = dev_buf(ar, NULL, (T + 1) * Bh * 4);
    s.bhp = dev_buf(ar, NULL, T * Bh * 4); s.bmean = dev_buf(ar, NULL, (size_t)T * B * 4);
    s.brstd = dev_buf(ar, NULL, (size_t)T * B * 4); s.bdhs = dev_buf(ar, NULL, (T + 1) * Bh * 4);
    s.bdhp = dev_buf(ar, NULL, T * Bh * 4); s.bdu = dev_buf(ar, NULL, T * Bw * 4);
    s.bmean_s = dev_buf(ar, NULL, T * s.srow); s.brstd_s = dev_buf(ar, NULL, T * s.srow);
    s.bdgain = dev_buf(ar, NULL, h * 4); s.bdbias = dev_buf(ar, NULL, h * 4);
    if (!arena_ok(ar)) return 1;
    if (enn_buffer_upload(ctx, s.bhs, 0, s.h0, Bh * 4)) { /* slab 0: h_0 */
        fprintf(stderr, "enn bench: %s\n", enn_last_error());
        return 1;
    }
    bench_case c = {.st = &s, .flops = 12.0 * T * B * h * h}; /* two [B,h]x[h,3h]-sized products a step */
    snprintf(c.shape, sizeof c.shape, "T%u B%u h%u", T, B, h);
    int rc = 0;
    const char *names[2][2] = {{"recur_fwd", "recur_fwd_loop"}, {"recur_bwd", "recur_bwd_loop"}};
    for (int steps = 0; steps < 2; steps++) {
        bench_case f = c;
        f.kernel = names[0][steps], f.record = steps ? rec_recur_fwd_steps : rec_recur_fwd, f.cpu = cpu_recur_fwd;
        add_check(&f, s.bhs, s.hs, (T + 1) * Bh, 0);
        add_check(&f, s.bu, s.u, T * Bw, 0);
        rc |= run_case(ctx, rec, o, &f);
    }
    /* The backward cases read the forward state both sides left (the same up to rounding). */
    for (int steps = 0; steps < 2; steps++) {
        bench_case b = c;
        b.kernel = names[1][steps], b.record = steps ? rec_recur_bwd_steps : rec_recur_bwd, b.cpu = cpu_recur_bwd;
        add_check(&b, s.bdhs, s.dhs, (T + 1) * Bh, 0);
        add_check(&b, s.bdu, s.du, T * Bw, 0);
        rc |= run_case(ctx, rec, o, &b);
    }
    return rc;
}
int bench_recurrence(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, 2, recur_one);
}
