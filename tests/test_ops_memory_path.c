/* The memory path over several time steps, composed from the ops the way a training
 * step uses them (fused forward, then backward through time with the backward ops and
 * their accumulate flags), against finite differences of the double reference
 * composition. Checks that the ops fit together: the trace recurrence, the gradient that
 * reaches a from both the loss and the Hebbian update, dM summed over steps, and dH
 * meeting alpha dE. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/cosine_attention.h"
#include "ops/effective_memory.h"
#include "ops/hebbian_trace.h"
#include "ops/memory_step.h"
#include "ops/philox.h"
#include "ops_testutil.h"
#include "ref_cosine_attention.h"
#include "ref_effective_memory.h"
#include "ref_hebbian_trace.h"

enum { T = 3, B = 3, N = 4, HD = 5 };
static const double ALPHA = 0.5, TAU_E = 0.75, ETA = 0.3, CLIP = 0.1, SIGMA = 0.004;

typedef struct problem {
    int ps;
    size_t nH;                 /* elements of H */
    double *xi[T];             /* the noise of each step (host Philox, stream = t) */
    double *wa[T], *wm[T], *wH; /* loss weights */
} problem;

/* L = sum_t (wa_t . a_t + wm_t . m_t) + wH . H_T; also the smallest distance of an
 * unclipped trace value from a clip bound, and how many values were clipped. */
static double loss(const problem *p, const double *M, const double *H0, double *const z[T], double *margin,
                   int *clipped)
{
    double *H = malloc(p->nH * sizeof *H), *E = malloc(p->nH * sizeof *E), *Hn = malloc(p->nH * sizeof *Hn),
           *pre = malloc(p->nH * sizeof *pre), a[B * N], m[B * HD], L = 0;
    memcpy(H, H0, p->nH * sizeof *H);
    if (margin) *margin = INFINITY, *clipped = 0;
    for (int t = 0; t < T; t++) {
        ref_effective_memory_forward(p->ps ? B : 1, N * HD, M, H, ALPHA, E);
        ref_cosine_attention_forward(B, N, HD, p->ps, z[t], E, TAU_E, a, m);
        ref_hebbian_trace_forward(B, N, HD, p->ps, H, a, z[t], p->xi[t], ETA, CLIP, Hn, pre);
        for (int i = 0; i < B * N; i++) L += p->wa[t][i] * a[i];
        for (int i = 0; i < B * HD; i++) L += p->wm[t][i] * m[i];
        for (size_t i = 0; i < p->nH; i++)
            if (margin) *margin = fmin(*margin, fabs(fabs(pre[i]) - CLIP)), *clipped += fabs(pre[i]) > CLIP;
        memcpy(H, Hn, p->nH * sizeof *H);
    }
    for (size_t i = 0; i < p->nH; i++) L += p->wH[i] * H[i];
    free(H), free(E), free(Hn), free(pre);
    return L;
}

static double *dvec(uint64_t *st, size_t n, double lo, double hi)
{
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)test_rand_uniform(st, lo, hi); /* representable in fp32 */
    return x;
}

static float *fvec(const double *x, size_t n)
{
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static enn_buffer *dbuf(enn_context *ctx, const double *x, size_t n)
{
    float *f = x ? fvec(x, n) : NULL;
    enn_buffer *b = tu_buffer(ctx, f, n);
    free(f);
    return b;
}

static void run(int ps)
{
    uint64_t st = 1000 + ps;
    problem p = {.ps = ps, .nH = (size_t)(ps ? B : 1) * N * HD};
    double *M = dvec(&st, N * HD, -0.4, 0.4), *H0 = dvec(&st, p.nH, -0.12, 0.12), *z[T];
    for (int t = 0; t < T; t++) {
        z[t] = dvec(&st, B * HD, -1, 1);
        p.wa[t] = dvec(&st, B * N, -1, 1);
        p.wm[t] = dvec(&st, B * HD, -1, 1);
        p.xi[t] = malloc(p.nH * sizeof(double));
        for (size_t i = 0; i < p.nH; i++) p.xi[t][i] = (float)SIGMA * enn_philox_normal(42, t, (uint32_t)i);
    }
    p.wH = dvec(&st, p.nH, -1, 1);
    double margin;
    int clipped;
    loss(&p, M, H0, z, &margin, &clipped);
    cr_assert_gt(clipped, 0, "the clip must be active in some step");
    /* The finite differences below move pre by < 1e-5 and fp32 by < 1e-6: a margin of
     * 1e-4 keeps every clip decision the same for all of them. */
    cr_assert_gt(margin, 1e-4, "test data puts an unclipped trace value %g from a bound; choose another seed", margin);

    /* The device: fused forward over T steps, then backward through time. */
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_memory_shape s = {B, N, HD, ps};
    enn_hebbian_params hp = {.eta = (float)ETA, .clip = (float)CLIP, .noise = {.mode = ENN_NOISE_PHILOX, .sigma = (float)SIGMA, .seed = 42}};
    enn_buffer *bM = dbuf(ctx, M, N * HD), *bH[T + 1], *bz[T], *ba[T], *bm[T], *bda[T], *bwm[T], *bdz[T];
    bH[0] = dbuf(ctx, H0, p.nH);
    for (int t = 0; t < T; t++) {
        bH[t + 1] = dbuf(ctx, NULL, p.nH);
        bz[t] = dbuf(ctx, z[t], B * HD);
        ba[t] = dbuf(ctx, NULL, B * N);
        bm[t] = dbuf(ctx, NULL, B * HD);
        bda[t] = dbuf(ctx, p.wa[t], B * N); /* starts as dL/da_t from the loss; the Hebbian backward adds to it */
        bwm[t] = dbuf(ctx, p.wm[t], B * HD);
        bdz[t] = dbuf(ctx, NULL, B * HD);
    }
    enn_buffer *bdHnext = dbuf(ctx, p.wH, p.nH), *bdH = dbuf(ctx, NULL, p.nH), *bE = dbuf(ctx, NULL, p.nH),
               *bdE = dbuf(ctx, NULL, p.nH), *bdM = dbuf(ctx, NULL, N * HD), *ws1 = NULL, *ws2 = NULL;
    ENN_ASSERT_OK(enn_buffer_create(ctx, enn_hebbian_trace_workspace_bytes(s), &ws1));
    ENN_ASSERT_OK(enn_buffer_create(ctx, enn_cosine_attention_workspace_bytes(s), &ws2));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (int t = 0; t < T; t++) {
        hp.noise.stream = t;
        ENN_ASSERT_OK(enn_memory_step_forward(rec, s, enn_view_of(ba[t]), enn_view_of(bm[t]), enn_view_of(bH[t + 1]),
                                              enn_view_of(bz[t]), enn_view_of(bM), enn_view_of(bH[t]), (float)ALPHA,
                                              (float)TAU_E, &hp));
    }
    for (int t = T - 1; t >= 0; t--) {
        hp.noise.stream = t;
        /* dH_new -> dH_t (fresh), da_t (added to the loss's), dz_t (fresh). */
        ENN_ASSERT_OK(enn_hebbian_trace_backward(rec, s, enn_view_of(bdH), enn_view_of(bda[t]), enn_view_of(bdz[t]),
                                                 enn_view_of(ws1), enn_view_of(bdHnext), enn_view_of(bH[t]),
                                                 enn_view_of(ba[t]), enn_view_of(bz[t]), &hp, 0.0f, 1.0f, 0.0f));
        ENN_ASSERT_OK(enn_effective_memory_forward(rec, s, enn_view_of(bE), enn_view_of(bM), enn_view_of(bH[t]),
                                                   (float)ALPHA));
        ENN_ASSERT_OK(enn_cosine_attention_backward(rec, s, enn_view_of(bdz[t]), enn_view_of(bdE), enn_view_of(ws2),
                                                    enn_view_of(bwm[t]), enn_view_of(bda[t]), enn_view_of(bz[t]),
                                                    enn_view_of(bE), enn_view_of(ba[t]), (float)TAU_E, 1.0f, 0.0f));
        /* dM sums over steps; dH_t meets alpha dE_t. */
        ENN_ASSERT_OK(enn_effective_memory_backward(rec, s, enn_view_of(bdM), enn_view_of(bdH), enn_view_of(bdE),
                                                    (float)ALPHA, t == T - 1 ? 0.0f : 1.0f, 1.0f));
        enn_buffer *tmp = bdHnext;
        bdHnext = bdH, bdH = tmp;
    }
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *gM = tu_download(ctx, bdM, N * HD), *gH0 = tu_download(ctx, bdHnext, p.nH), *gz[T];
    for (int t = 0; t < T; t++) gz[t] = tu_download(ctx, bdz[t], B * HD);

    /* Central differences of the double composition, step 1e-6 (truncation ~1e-12,
     * rounding ~1e-10). The device's gradients carry fp32 rounding through T steps of
     * sums of length <= 20: 1e-5 of the largest gradient of each input. */
    double *xs[2 + T], *fd;
    float *gs[2 + T];
    size_t ns[2 + T];
    xs[0] = M, gs[0] = gM, ns[0] = N * HD;
    xs[1] = H0, gs[1] = gH0, ns[1] = p.nH;
    for (int t = 0; t < T; t++) xs[2 + t] = z[t], gs[2 + t] = gz[t], ns[2 + t] = B * HD;
    for (int k = 0; k < 2 + T; k++) {
        fd = malloc(ns[k] * sizeof *fd);
        for (size_t i = 0; i < ns[k]; i++) {
            double keep = xs[k][i];
            xs[k][i] = keep + 1e-6;
            double lp = loss(&p, M, H0, z, NULL, NULL);
            xs[k][i] = keep - 1e-6;
            double lm = loss(&p, M, H0, z, NULL, NULL);
            xs[k][i] = keep;
            fd[i] = (lp - lm) / 2e-6;
        }
        double e = tu_rel_error(gs[k], fd, ns[k], 1e-30);
        cr_log_info("per_sample=%d input %d: error %.2g", ps, k, e);
        cr_assert_lt(e, 1e-5, "per_sample=%d: gradient of input %d (0 M, 1 H0, 2.. z_t) off by %g", ps, k, e);
        free(fd);
    }

    free(gM), free(gH0), free(M), free(H0), free(p.wH);
    for (int t = 0; t < T; t++) free(gz[t]), free(z[t]), free(p.wa[t]), free(p.wm[t]), free(p.xi[t]);
    enn_buffer_destroy(ctx, bM);
    for (int t = 0; t <= T; t++) enn_buffer_destroy(ctx, bH[t]);
    for (int t = 0; t < T; t++) {
        enn_buffer *bs[] = {bz[t], ba[t], bm[t], bda[t], bwm[t], bdz[t]};
        for (int i = 0; i < 6; i++) enn_buffer_destroy(ctx, bs[i]);
    }
    enn_buffer *rest[] = {bdHnext, bdH, bE, bdE, bdM, ws1, ws2};
    for (int i = 0; i < 7; i++) enn_buffer_destroy(ctx, rest[i]);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(memory_path, shared_trace_through_time) { run(0); }
Test(memory_path, per_sample_trace_through_time) { run(1); }
