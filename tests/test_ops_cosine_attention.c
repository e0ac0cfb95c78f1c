/* Cosine attention and retrieval: the double reference's backward against finite
 * differences of its forward, then the device's forward and backward against the
 * reference over random and edge shapes, both trace modes, with and without da_in, and
 * accumulation into existing gradients. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "harness.h"
#include "ops/cosine_attention.h"
#include "ops_testutil.h"
#include "ref_cosine_attention.h"

/* L = sum(wa * a) + sum(wm * m) in double. */
static double loss(uint32_t B, uint32_t N, uint32_t h, int ps, const double *z, const double *E, double tau,
                   const double *wa, const double *wm)
{
    double *a = malloc((size_t)B * N * sizeof *a), *m = malloc((size_t)B * h * sizeof *m), L = 0;
    ref_cosine_attention_forward(B, N, h, ps, z, E, tau, a, m);
    for (size_t i = 0; i < (size_t)B * N; i++) L += wa[i] * a[i];
    for (size_t i = 0; i < (size_t)B * h; i++) L += wm[i] * m[i];
    free(a), free(m);
    return L;
}

static double *drand(uint64_t *st, size_t n, double lo, double hi)
{
    double *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = test_rand_uniform(st, lo, hi);
    return x;
}

/* Central differences with step 1e-6 have truncation error ~1e-12 times the third
 * derivative and rounding ~1e-16/1e-6 = 1e-10: 1e-6 relative is a tight bound. */
Test(cosine_attention, reference_matches_finite_differences)
{
    uint64_t st = 5;
    for (int ps = 0; ps <= 1; ps++) {
        const uint32_t B = 3, N = 5, h = 7;
        const double tau = 0.75;
        size_t nE = (size_t)(ps ? B : 1) * N * h;
        double *z = drand(&st, B * h, -1, 1), *E = drand(&st, nE, -0.5, 0.5);
        double *wa = drand(&st, B * N, -1, 1), *wm = drand(&st, B * h, -1, 1);
        double *dz = malloc(B * h * sizeof *dz), *dE = malloc(nE * sizeof *dE);
        ref_cosine_attention_backward(B, N, h, ps, z, E, tau, wm, wa, dz, dE);
        double worst = 0, scale = 1e-3;
        for (int which = 0; which < 2; which++) {
            double *x = which ? E : z, *g = which ? dE : dz;
            size_t n = which ? nE : (size_t)B * h;
            for (size_t i = 0; i < n; i++) {
                double keep = x[i], eps = 1e-6;
                x[i] = keep + eps;
                double lp = loss(B, N, h, ps, z, E, tau, wa, wm);
                x[i] = keep - eps;
                double lm = loss(B, N, h, ps, z, E, tau, wa, wm);
                x[i] = keep;
                double fd = (lp - lm) / (2 * eps);
                worst = fmax(worst, fabs(fd - g[i]));
                scale = fmax(scale, fabs(g[i]));
            }
        }
        cr_assert_lt(worst / scale, 1e-6, "per_sample=%d: finite-difference error %g (scale %g)", ps, worst, scale);
        free(z), free(E), free(wa), free(wm), free(dz), free(dE);
    }
}

typedef struct errors {
    double a, m, dz, dE;
} errors;

/* One case on the device against the reference. `tiny_rows` makes z row 0 and memory row
 * 0 so small that their norms are clamped. */
static errors run_case(enn_context *ctx, enn_recorder *rec, uint64_t *st, uint32_t B, uint32_t N, uint32_t h, int ps,
                       int has_da, int accumulate, int tiny_rows)
{
    const float tau = 1.5f / 2.0f;
    enn_memory_shape s = {B, N, h, ps};
    size_t nz = (size_t)B * h, na = (size_t)B * N, nE = (size_t)(ps ? B : 1) * N * h;
    float *z = tu_random(st, nz, -1, 1), *E = tu_random(st, nE, -0.5, 0.5);
    float *dm = tu_random(st, nz, -1, 1), *da = tu_random(st, na, -1, 1);
    float *dz0 = tu_random(st, nz, -1, 1), *dE0 = tu_random(st, nE, -1, 1);
    if (tiny_rows) {
        for (uint32_t j = 0; j < h; j++) z[j] *= 1e-8f;
        for (uint32_t j = 0; j < h; j++) E[j] *= 1e-8f;
    }
    enn_buffer *bz = tu_buffer(ctx, z, nz), *bE = tu_buffer(ctx, E, nE), *ba = tu_buffer(ctx, NULL, na),
               *bm = tu_buffer(ctx, NULL, nz), *bdm = tu_buffer(ctx, dm, nz), *bda = tu_buffer(ctx, da, na),
               *bdz = tu_buffer(ctx, dz0, nz), *bdE = tu_buffer(ctx, dE0, nE), *ws = NULL;
    ENN_ASSERT_OK(enn_buffer_create(ctx, enn_cosine_attention_workspace_bytes(s), &ws));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_cosine_attention_forward(rec, s, enn_view_of(ba), enn_view_of(bm), enn_view_of(bz),
                                               enn_view_of(bE), tau));
    float beta = accumulate ? 1.0f : 0.0f;
    ENN_ASSERT_OK(enn_cosine_attention_backward(rec, s, enn_view_of(bdz), enn_view_of(bdE), enn_view_of(ws),
                                                enn_view_of(bdm), has_da ? enn_view_of(bda) : (enn_view){0},
                                                enn_view_of(bz), enn_view_of(bE), enn_view_of(ba), tau, beta, beta));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *ga = tu_download(ctx, ba, na), *gm = tu_download(ctx, bm, nz), *gdz = tu_download(ctx, bdz, nz),
          *gdE = tu_download(ctx, bdE, nE);

    double *zd = tu_to_double(z, nz), *Ed = tu_to_double(E, nE), *dmd = tu_to_double(dm, nz),
           *dad = tu_to_double(da, na);
    double *ra = malloc(na * sizeof *ra), *rm = malloc(nz * sizeof *rm), *rdz = malloc(nz * sizeof *rdz),
           *rdE = malloc(nE * sizeof *rdE);
    ref_cosine_attention_forward(B, N, h, ps, zd, Ed, tau, ra, rm);
    ref_cosine_attention_backward(B, N, h, ps, zd, Ed, tau, dmd, has_da ? dad : NULL, rdz, rdE);
    if (accumulate) {
        for (size_t i = 0; i < nz; i++) rdz[i] += dz0[i];
        for (size_t i = 0; i < nE; i++) rdE[i] += dE0[i];
    }
    errors e = {tu_rel_error(ga, ra, na, 1e-30), tu_rel_error(gm, rm, nz, 1e-30), tu_rel_error(gdz, rdz, nz, 1e-30),
                tu_rel_error(gdE, rdE, nE, 1e-30)};
    if (tiny_rows) {
        /* A clamped row's gradient is the unclamped formula's scaled by 1e6/|z|: compare
         * that row on its own scale. */
        double *row = malloc(h * sizeof *row);
        for (uint32_t j = 0; j < h; j++) row[j] = rdz[j];
        e.dz = fmax(e.dz, tu_rel_error(gdz, row, h, 1e-30));
        free(row);
    }
    free(z), free(E), free(dm), free(da), free(dz0), free(dE0), free(ga), free(gm), free(gdz), free(gdE);
    free(zd), free(Ed), free(dmd), free(dad), free(ra), free(rm), free(rdz), free(rdE);
    enn_buffer *bufs[] = {bz, bE, ba, bm, bdm, bda, bdz, bdE, ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) enn_buffer_destroy(ctx, bufs[i]);
    return e;
}

/* Tolerances, relative to the largest value of each tensor. Forward: fp32 dot products
 * over h <= 130 and sums over N of positive weights; each rounding is ~6e-8 and their
 * sums grow like sqrt(length) in practice (measured: < 7e-7 over these shapes). Backward:
 * the same sums, the batch sum of the shared-memory gradient (B = 128), and a
 * projection that cancels part of it (measured: < 6e-7). 1e-5 leaves a margin of ten
 * and still catches any wrong term (those err by 1e-2 or more). */
#define TOL_FORWARD 1e-5
#define TOL_BACKWARD 1e-5

static void check(errors e, const char *what, uint32_t B, uint32_t N, uint32_t h, int ps)
{
    cr_log_info("%s B=%u N=%u h=%u per_sample=%d: errors a %.2g m %.2g dz %.2g dE %.2g", what, B, N, h, ps, e.a, e.m,
                e.dz, e.dE);
    cr_assert_lt(e.a, TOL_FORWARD, "%s B=%u N=%u h=%u per_sample=%d: a error %g", what, B, N, h, ps, e.a);
    cr_assert_lt(e.m, TOL_FORWARD, "%s B=%u N=%u h=%u per_sample=%d: m error %g", what, B, N, h, ps, e.m);
    cr_assert_lt(e.dz, TOL_BACKWARD, "%s B=%u N=%u h=%u per_sample=%d: dz error %g", what, B, N, h, ps, e.dz);
    cr_assert_lt(e.dE, TOL_BACKWARD, "%s B=%u N=%u h=%u per_sample=%d: dE error %g", what, B, N, h, ps, e.dE);
}

Test(cosine_attention, device_random_shapes)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 77;
    for (int k = 0; k < 12; k++) {
        uint32_t B = tu_pick_dim(&st, 40), N = tu_pick_dim(&st, 70), h = tu_pick_dim(&st, 130);
        int ps = k & 1, has_da = (k >> 1) & 1, acc = k % 3 == 0;
        check(run_case(ctx, rec, &st, B, N, h, ps, has_da, acc, 0), "random", B, N, h, ps);
    }
    /* Slots past one shared-memory array of 64 and past the workgroup size. */
    check(run_case(ctx, rec, &st, 5, 131, 17, 0, 1, 0, 0), "wide", 5, 131, 17, 0);
    check(run_case(ctx, rec, &st, 1, 1, 1, 0, 1, 0, 0), "unit", 1, 1, 1, 0);
    check(run_case(ctx, rec, &st, 1, 1, 1, 1, 1, 1, 0), "unit", 1, 1, 1, 1);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(cosine_attention, device_paper_shape)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 78;
    check(run_case(ctx, rec, &st, 128, 64, 128, 0, 1, 0, 0), "paper", 128, 64, 128, 0);
    check(run_case(ctx, rec, &st, 128, 64, 128, 1, 1, 1, 0), "paper", 128, 64, 128, 1);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* Rows whose sum of squares is below 1e-12 take the clamped branch in both passes. */
Test(cosine_attention, device_clamped_norms)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 79;
    check(run_case(ctx, rec, &st, 4, 6, 9, 0, 1, 0, 1), "clamped", 4, 6, 9, 0);
    check(run_case(ctx, rec, &st, 4, 6, 9, 1, 1, 0, 1), "clamped", 4, 6, 9, 1);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(cosine_attention, rejects_bad_arguments)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *b = tu_buffer(ctx, NULL, 16);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    enn_memory_shape s = {2, 2, 4, 0};
    enn_view v = enn_view_of(b);
    cr_assert_eq(enn_cosine_attention_forward(rec, s, v, v, v, v, 0.0f), ENN_ERROR_INVALID_ARGUMENT);
    s.h = 40; /* z needs 320 bytes of a 64-byte buffer */
    cr_assert_eq(enn_cosine_attention_forward(rec, s, v, v, v, v, 1.0f), ENN_ERROR_OUT_OF_RANGE);
    cr_assert(strstr(enn_last_error(), "cosine_attention_forward"), "%s", enn_last_error());
    s.B = 0;
    cr_assert_eq(enn_cosine_attention_forward(rec, s, v, v, v, v, 1.0f), ENN_ERROR_SHAPE);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, b);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* The launcher lays work out per device type (8 rows per workgroup on CPU devices, one
 * on GPUs); lavapipe is a CPU device, so posing as a GPU tests the GPU layout here. */
Test(cosine_attention, device_gpu_layout)
{
    enn_context *ctx = test_context();
    enn_device_type real = ctx->caps.device_type;
    ctx->caps.device_type = ENN_DEVICE_DISCRETE_GPU;
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 79;
    for (int k = 0; k < 4; k++) {
        uint32_t B = tu_pick_dim(&st, 20), N = tu_pick_dim(&st, 70), h = tu_pick_dim(&st, 40) * 4 - (k == 3);
        check(run_case(ctx, rec, &st, B, N, h, k & 1, 1, k == 2, 0), "gpu layout", B, N, h, k & 1);
    }
    check(run_case(ctx, rec, &st, 4, 6, 9, 0, 1, 0, 1), "gpu layout clamped", 4, 6, 9, 0);
    check(run_case(ctx, rec, &st, 4, 6, 8, 1, 1, 0, 1), "gpu layout clamped", 4, 6, 8, 1);
    enn_recorder_destroy(rec);
    ctx->caps.device_type = real;
    test_context_finish(ctx);
}
