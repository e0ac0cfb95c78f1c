/* Layer normalisation: the double reference's backward against finite differences of its
 * forward; the device's forward and backward against the reference over random and edge
 * shapes, with accumulation into existing gradients and a constant row. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "ops/layer_norm.h"
#include "ops_testutil.h"
#include "ref_layer_norm.h"

#define EPS 1e-6

/* Central differences, step 1e-6: truncation ~1e-12 times the third derivative (rstd up
 * to ~3 here), rounding ~1e-10: bound 1e-6 relative. */
Test(layer_norm, reference_matches_finite_differences)
{
    uint64_t st = 21;
    const uint32_t R = 3, C = 7;
    double x[21], gain[7], bias[7], w[21], y[21], dx[21], dg[7], db[7];
    for (int i = 0; i < 21; i++) x[i] = test_rand_uniform(&st, -2, 2), w[i] = test_rand_uniform(&st, -1, 1);
    for (int i = 0; i < 7; i++) gain[i] = test_rand_uniform(&st, 0.5, 1.5), bias[i] = test_rand_uniform(&st, -1, 1);
    ref_layer_norm_backward(R, C, x, gain, EPS, w, dx, dg, db);
    double *xs[3] = {x, gain, bias}, *gs[3] = {dx, dg, db};
    int ns[3] = {21, 7, 7};
    double worst = 0, scale = 1e-3;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ns[k]; i++) {
            double keep = xs[k][i], e = 1e-6, lp = 0, lm = 0;
            xs[k][i] = keep + e;
            ref_layer_norm_forward(R, C, x, gain, bias, EPS, y);
            for (int j = 0; j < 21; j++) lp += w[j] * y[j];
            xs[k][i] = keep - e;
            ref_layer_norm_forward(R, C, x, gain, bias, EPS, y);
            for (int j = 0; j < 21; j++) lm += w[j] * y[j];
            xs[k][i] = keep;
            worst = fmax(worst, fabs((lp - lm) / (2 * e) - gs[k][i]));
            scale = fmax(scale, fabs(gs[k][i]));
        }
    cr_assert_lt(worst / scale, 1e-6, "finite-difference error %g (scale %g)", worst, scale);
}

typedef struct errors {
    double y, mean_rstd, dx, dgain, dbias;
} errors;

static errors run_case(enn_context *ctx, enn_recorder *rec, uint64_t *st, uint32_t R, uint32_t C, int accumulate,
                       int constant_row)
{
    size_t n = (size_t)R * C;
    float *x = tu_random(st, n, -2, 3), *gain = tu_random(st, C, 0.5, 1.5), *bias = tu_random(st, C, -1, 1);
    float *dy = tu_random(st, n, -1, 1), *dx0 = tu_random(st, n, -1, 1), *dg0 = tu_random(st, C, -1, 1),
          *db0 = tu_random(st, C, -1, 1);
    if (constant_row)
        for (uint32_t c = 0; c < C; c++) x[c] = 0.75f;
    enn_buffer *bx = tu_buffer(ctx, x, n), *bg = tu_buffer(ctx, gain, C), *bb = tu_buffer(ctx, bias, C),
               *by = tu_buffer(ctx, NULL, n), *bm = tu_buffer(ctx, NULL, R), *br = tu_buffer(ctx, NULL, R),
               *bdy = tu_buffer(ctx, dy, n), *bdx = tu_buffer(ctx, dx0, n), *bdg = tu_buffer(ctx, dg0, C),
               *bdb = tu_buffer(ctx, db0, C);
    float beta = accumulate ? 1.0f : 0.0f;
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_layer_norm_forward(rec, enn_view_of(by), enn_view_of(bm), enn_view_of(br), enn_view_of(bx),
                                         enn_view_of(bg), enn_view_of(bb), R, C, (float)EPS));
    ENN_ASSERT_OK(enn_layer_norm_backward(rec, enn_view_of(bdx), enn_view_of(bdg), enn_view_of(bdb), enn_view_of(bdy),
                                          enn_view_of(bx), enn_view_of(bg), enn_view_of(bm), enn_view_of(br), R, C, beta,
                                          beta));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *gy = tu_download(ctx, by, n), *gm = tu_download(ctx, bm, R), *gr = tu_download(ctx, br, R),
          *gdx = tu_download(ctx, bdx, n), *gdg = tu_download(ctx, bdg, C), *gdb = tu_download(ctx, bdb, C);
    double *xd = tu_to_double(x, n), *gd = tu_to_double(gain, C), *bd = tu_to_double(bias, C), *dyd = tu_to_double(dy, n);
    double *ry = malloc(n * sizeof *ry), *rdx = malloc(n * sizeof *rdx), *rdg = malloc(C * sizeof *rdg),
           *rdb = malloc(C * sizeof *rdb);
    ref_layer_norm_forward(R, C, xd, gd, bd, EPS, ry);
    ref_layer_norm_backward(R, C, xd, gd, EPS, dyd, rdx, rdg, rdb);
    if (accumulate) {
        for (size_t i = 0; i < n; i++) rdx[i] += dx0[i];
        for (uint32_t c = 0; c < C; c++) rdg[c] += dg0[c], rdb[c] += db0[c];
    }
    errors e = {tu_rel_error(gy, ry, n, 1e-30), 0, tu_rel_error(gdx, rdx, n, 1e-30), tu_rel_error(gdg, rdg, C, 1e-30),
                tu_rel_error(gdb, rdb, C, 1e-30)};
    /* The saved statistics, each relative to its own value. */
    for (uint32_t r = 0; r < R; r++) {
        double s = 0, v = 0;
        for (uint32_t c = 0; c < C; c++) s += xd[(size_t)r * C + c];
        s /= C;
        for (uint32_t c = 0; c < C; c++) v += (xd[(size_t)r * C + c] - s) * (xd[(size_t)r * C + c] - s);
        double rstd = 1 / sqrt(v / C + EPS);
        e.mean_rstd = fmax(e.mean_rstd, fabs(gm[r] - s) / fmax(fabs(s), 1.0));
        e.mean_rstd = fmax(e.mean_rstd, fabs(gr[r] - rstd) / rstd);
    }
    free(x), free(gain), free(bias), free(dy), free(dx0), free(dg0), free(db0), free(gy), free(gm), free(gr), free(gdx),
        free(gdg), free(gdb), free(xd), free(gd), free(bd), free(dyd), free(ry), free(rdx), free(rdg), free(rdb);
    enn_buffer *bufs[] = {bx, bg, bb, by, bm, br, bdy, bdx, bdg, bdb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) enn_buffer_destroy(ctx, bufs[i]);
    return e;
}

/* Tolerances, relative to each tensor's largest value: fp32 row sums of length C <= 300
 * (mean, variance, the two backward means) and column sums of length R <= 300 (dgain,
 * dbias), each rounding ~6e-8 and growing like sqrt(length) in practice: 1e-5. The
 * measured errors stay below 1e-6. */
#define TOL 1e-5
/* Rows of (near) zero variance: C = 1, or constant rows. There rstd = 1/sqrt(eps) = 1000
 * multiplies the fp32 rounding of x - mean (~1.2e-7 |x| for a mean whose summation order
 * the driver picks: lavapipe happens to get it exact, NVIDIA does not), so the output and
 * dx can be off by ~1.2e-4 of |x|; 3e-4 of the tensor's scale bounds that. */
#define TOL_DEGENERATE 3e-4

static void check_tol(errors e, const char *what, uint32_t R, uint32_t C, double tol)
{
    cr_log_info("%s R=%u C=%u: errors y %.2g stats %.2g dx %.2g dgain %.2g dbias %.2g", what, R, C, e.y, e.mean_rstd,
                e.dx, e.dgain, e.dbias);
    cr_assert_lt(e.y, tol, "%s R=%u C=%u: y error %g", what, R, C, e.y);
    cr_assert_lt(e.mean_rstd, TOL, "%s R=%u C=%u: mean/rstd error %g", what, R, C, e.mean_rstd);
    cr_assert_lt(e.dx, tol, "%s R=%u C=%u: dx error %g", what, R, C, e.dx);
    cr_assert_lt(e.dgain, tol, "%s R=%u C=%u: dgain error %g", what, R, C, e.dgain);
    cr_assert_lt(e.dbias, TOL, "%s R=%u C=%u: dbias error %g", what, R, C, e.dbias);
}

static void check(errors e, const char *what, uint32_t R, uint32_t C)
{
    check_tol(e, what, R, C, C == 1 ? TOL_DEGENERATE : TOL);
}


Test(layer_norm, device_random_shapes)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 23;
    for (int k = 0; k < 12; k++) {
        uint32_t R = tu_pick_dim(&st, 300), C = tu_pick_dim(&st, 300);
        check(run_case(ctx, rec, &st, R, C, k & 1, 0), "random", R, C);
    }
    check(run_case(ctx, rec, &st, 128, 128, 0, 0), "paper", 128, 128);
    /* Whole vec4 rows (CPU devices: the _texel kernels), accumulating into the gradients. */
    check(run_case(ctx, rec, &st, 37, 64, 1, 0), "vec4 rows", 37, 64);
    check(run_case(ctx, rec, &st, 1, 1, 1, 0), "unit", 1, 1);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* A constant row has variance 0: rstd = 1/sqrt(eps) = 1000 and xhat = 0. */
Test(layer_norm, device_constant_row)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 24;
    check_tol(run_case(ctx, rec, &st, 5, 37, 0, 1), "constant row", 5, 37, TOL_DEGENERATE);
    check_tol(run_case(ctx, rec, &st, 5, 36, 1, 1), "constant row", 5, 36, TOL_DEGENERATE);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
