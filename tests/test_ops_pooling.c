/* Attention pooling over time and the MSE loss: the double reference against finite
 * differences, and the device against the reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/recorder.h"
#include "harness.h"
#include "ops/pooling.h"
#include "ref_pooling.h"

/* The scalar the finite differences differentiate: sum(ctx * g) for fixed random g. */
static double pooled_objective(size_t T, size_t B, size_t h, const double *hs, const double *w, const double *g)
{
    double *s = malloc(T * B * sizeof *s), *p = malloc(T * B * sizeof *p), *ctx = malloc(B * h * sizeof *ctx);
    ref_attention_pooling_forward(T, B, h, hs, w, s, p, ctx);
    double f = 0;
    for (size_t i = 0; i < B * h; i++) f += ctx[i] * g[i];
    free(s); free(p); free(ctx);
    return f;
}

Test(pooling, reference_matches_finite_differences)
{
    const size_t T = 5, B = 3, h = 4;
    uint64_t seed = 11;
    double hs[5 * 3 * 4], w[5], g[3 * 4], s[15], p[15], ctx[12], dhs[60], dw[5];
    for (size_t i = 0; i < T * B * h; i++) hs[i] = test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i <= h; i++) w[i] = test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < B * h; i++) g[i] = test_rand_uniform(&seed, -1, 1);
    ref_attention_pooling_forward(T, B, h, hs, w, s, p, ctx);
    ref_attention_pooling_backward(T, B, h, hs, w, s, p, g, dhs, dw);
    const double eps = 1e-6;
    for (size_t i = 0; i < T * B * h; i++) {
        double keep = hs[i];
        hs[i] = keep + eps; double fp = pooled_objective(T, B, h, hs, w, g);
        hs[i] = keep - eps; double fm = pooled_objective(T, B, h, hs, w, g);
        hs[i] = keep;
        double fd = (fp - fm) / (2 * eps);
        cr_assert(fabs(fd - dhs[i]) <= 1e-7 * (1 + fabs(fd)), "dhs[%zu]: analytic %g, numeric %g", i, dhs[i], fd);
    }
    for (size_t i = 0; i <= h; i++) {
        double keep = w[i];
        w[i] = keep + eps; double fp = pooled_objective(T, B, h, hs, w, g);
        w[i] = keep - eps; double fm = pooled_objective(T, B, h, hs, w, g);
        w[i] = keep;
        double fd = (fp - fm) / (2 * eps);
        cr_assert(fabs(fd - dw[i]) <= 1e-7 * (1 + fabs(fd)), "dw[%zu]: analytic %g, numeric %g", i, dw[i], fd);
    }
}

static enn_buffer *upload_floats(enn_context *ctx, const double *src, size_t n)
{
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)src[i];
    enn_buffer *b = NULL;
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * 4, &b));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, b, 0, f, n * 4));
    free(f);
    return b;
}

static enn_buffer *zeros(enn_context *ctx, size_t n)
{
    double *z = calloc(n, sizeof *z);
    enn_buffer *b = upload_floats(ctx, z, n);
    free(z);
    return b;
}

/* Largest |device - reference| relative to the reference's scale. */
static double max_rel_error(enn_context *ctx, enn_buffer *b, const double *ref, size_t n)
{
    float *f = malloc(n * sizeof *f);
    ENN_ASSERT_OK(enn_buffer_download(ctx, b, 0, f, n * 4));
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs(f[i] - ref[i]));
    free(f);
    return err / (scale > 0 ? scale : 1);
}

static void check_pooling_shape(size_t T, size_t B, size_t h)
{
    enn_context *ctx = test_context();
    uint64_t seed = T * 1000 + B * 10 + h;
    size_t nh = T * B * h;
    double *hs = malloc(nh * sizeof *hs), *w = malloc((h + 1) * sizeof *w), *g = malloc(B * h * sizeof *g);
    double *dhs0 = malloc(nh * sizeof *dhs0);
    for (size_t i = 0; i < nh; i++) hs[i] = test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i <= h; i++) w[i] = test_rand_uniform(&seed, -0.5, 0.5);
    for (size_t i = 0; i < B * h; i++) g[i] = test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < nh; i++) dhs0[i] = test_rand_uniform(&seed, -1, 1);
    double *s = malloc(T * B * sizeof *s), *p = malloc(T * B * sizeof *p), *c = malloc(B * h * sizeof *c);
    double *dhs = malloc(nh * sizeof *dhs), *dw = malloc((h + 1) * sizeof *dw);
    ref_attention_pooling_forward(T, B, h, hs, w, s, p, c);
    ref_attention_pooling_backward(T, B, h, hs, w, s, p, g, dhs, dw);
    for (size_t i = 0; i < nh; i++) dhs[i] += dhs0[i]; /* the device accumulates into dhs0 */

    enn_buffer *bhs = upload_floats(ctx, hs, nh), *bw = upload_floats(ctx, w, h + 1), *bg = upload_floats(ctx, g, B * h);
    enn_buffer *bs = zeros(ctx, T * B), *bp = zeros(ctx, T * B), *bc = zeros(ctx, B * h);
    enn_buffer *bdhs = upload_floats(ctx, dhs0, nh), *bpart = zeros(ctx, B * (h + 1));
    double *dw_prev = calloc(h + 1, sizeof *dw_prev);
    for (size_t i = 0; i <= h; i++) dw_prev[i] = 0.25 * (double)i;
    enn_buffer *bdw = upload_floats(ctx, dw_prev, h + 1);
    for (size_t i = 0; i <= h; i++) dw[i] += dw_prev[i];

    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_attention_pooling_forward(rec, T, B, h, enn_view_of(bhs), enn_view_of(bw), enn_view_of(bs),
                                                enn_view_of(bp), enn_view_of(bc)));
    ENN_ASSERT_OK(enn_attention_pooling_backward(rec, T, B, h, enn_view_of(bhs), enn_view_of(bw), enn_view_of(bs),
                                                 enn_view_of(bp), enn_view_of(bg), enn_view_of(bdhs), 1,
                                                 enn_view_of(bpart), enn_view_of(bdw)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    /* fp32 sums of at most T (softmax, context) or T*B (dw) terms of size O(1). */
    double tol = 2e-5 * sqrt((double)(T * B));
    cr_assert_lt(max_rel_error(ctx, bp, p, T * B), tol, "p, T=%zu B=%zu h=%zu", T, B, h);
    cr_assert_lt(max_rel_error(ctx, bc, c, B * h), tol, "ctx");
    cr_assert_lt(max_rel_error(ctx, bdhs, dhs, nh), tol, "dhs");
    cr_assert_lt(max_rel_error(ctx, bdw, dw, h + 1), tol, "dw");
    enn_recorder_destroy(rec);
    enn_buffer *all[] = {bhs, bw, bg, bs, bp, bc, bdhs, bpart, bdw};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) enn_buffer_destroy(ctx, all[i]);
    free(hs); free(w); free(g); free(dhs0); free(s); free(p); free(c); free(dhs); free(dw); free(dw_prev);
    test_context_finish(ctx);
}

Test(pooling, device_matches_reference_small) { check_pooling_shape(5, 3, 6); }
Test(pooling, device_matches_reference_edges) { check_pooling_shape(1, 1, 1); check_pooling_shape(7, 2, 67); }
Test(pooling, device_matches_reference_paper) { check_pooling_shape(28, 128, 128); }
Test(pooling, device_matches_reference_long) { check_pooling_shape(784, 2, 8); }
/* On CPU devices h = 5 takes the one-float-at-a-time kernel, and T past the 64 steps
 * whose dctx . hs[t] the backward keeps makes it compute the later ones twice. */
Test(pooling, device_matches_reference_long_odd_h) { check_pooling_shape(100, 3, 5); }

Test(pooling, mse_matches_reference)
{
    enn_context *ctx = test_context();
    const size_t n = 1000;
    uint64_t seed = 5;
    double pred[1000], target[1000], grad[1000], loss = 0;
    for (size_t i = 0; i < n; i++) {
        pred[i] = test_rand_uniform(&seed, -2, 2);
        target[i] = test_rand_uniform(&seed, -2, 2);
        loss += 0.5 * (pred[i] - target[i]) * (pred[i] - target[i]) / n;
        grad[i] = 0.5 * 2 * (pred[i] - target[i]) / n;
    }
    enn_buffer *bp = upload_floats(ctx, pred, n), *bt = upload_floats(ctx, target, n), *bg = zeros(ctx, n), *bl = zeros(ctx, 1);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_mse_loss(rec, n, 0.5f, enn_view_of(bp), enn_view_of(bt), enn_view_of(bg), enn_view_of(bl)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    cr_assert_lt(max_rel_error(ctx, bl, &loss, 1), 1e-5);
    cr_assert_lt(max_rel_error(ctx, bg, grad, n), 1e-6);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, bp); enn_buffer_destroy(ctx, bt); enn_buffer_destroy(ctx, bg); enn_buffer_destroy(ctx, bl);
    test_context_finish(ctx);
}

Test(pooling, rejects_bad_shapes)
{
    enn_context *ctx = test_context();
    enn_buffer *b;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 1024, &b));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    enn_view v = enn_view_of(b);
    cr_assert_eq(enn_attention_pooling_forward(rec, 0, 2, 2, v, v, v, v, v), ENN_ERROR_SHAPE);
    cr_assert(strstr(enn_last_error(), "T=0") != NULL, "%s", enn_last_error());
    /* A buffer too small for the shapes is refused by the recorder, naming the op. */
    cr_assert_eq(enn_attention_pooling_forward(rec, 4, 4, 64, v, v, v, v, v), ENN_ERROR_OUT_OF_RANGE);
    cr_assert(strstr(enn_last_error(), "attention_pooling_forward") != NULL, "%s", enn_last_error());
    cr_assert_eq(enn_mse_loss(rec, 0, 1.0f, v, v, v, v), ENN_ERROR_SHAPE);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, b);
    test_context_finish(ctx);
}
