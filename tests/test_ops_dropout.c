/* Dropout: the device's mask is the host's Philox mask; forward and backward against the
 * double reference (and the reference against finite differences); a caller's mask; the
 * stream repeats with one seed and differs with another; the keep rate and the mean. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/dropout.h"
#include "ops/philox.h"
#include "ops_testutil.h"
#include "ref_dropout.h"

/* Dropout is linear in x, so central differences (step 1e-3) are exact to rounding. */
Test(dropout, reference_matches_finite_differences)
{
    uint64_t st = 1;
    double x[17], w[17], y[17], g[17];
    unsigned char keep[17];
    for (int i = 0; i < 17; i++) x[i] = test_rand_uniform(&st, -1, 1), w[i] = test_rand_uniform(&st, -1, 1), keep[i] = i % 3 != 0;
    ref_dropout(17, w, keep, 0.3, g); /* backward: the same map on dy = w */
    for (int i = 0; i < 17; i++) {
        double keep_x = x[i], lp = 0, lm = 0;
        x[i] = keep_x + 1e-3;
        ref_dropout(17, x, keep, 0.3, y);
        for (int j = 0; j < 17; j++) lp += w[j] * y[j];
        x[i] = keep_x - 1e-3;
        ref_dropout(17, x, keep, 0.3, y);
        for (int j = 0; j < 17; j++) lm += w[j] * y[j];
        x[i] = keep_x;
        cr_assert_lt(fabs((lp - lm) / 2e-3 - g[i]), 1e-10, "element %d", i);
    }
}

/* Forward, backward (accumulating) and the mask for n elements with the Philox mask,
 * against the host's mask and the double reference. y = x * scale is one fp32 rounding
 * (relative error <= 6e-8); the accumulated gradient adds one more: bound 2e-7. */
static void run_case(enn_context *ctx, enn_recorder *rec, uint64_t *st, uint32_t n, float p, uint64_t seed)
{
    enn_dropout_params dp = {.p = p, .seed = seed, .stream = 5};
    float *x = tu_random(st, n, -1, 1), *dy = tu_random(st, n, -1, 1), *dx0 = tu_random(st, n, -1, 1);
    enn_buffer *bx = tu_buffer(ctx, x, n), *by = tu_buffer(ctx, NULL, n), *bdy = tu_buffer(ctx, dy, n),
               *bdx = tu_buffer(ctx, dx0, n), *bm = tu_buffer(ctx, NULL, n);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_dropout_forward(rec, enn_view_of(by), enn_view_of(bx), n, &dp));
    ENN_ASSERT_OK(enn_dropout_backward(rec, enn_view_of(bdx), enn_view_of(bdy), n, &dp, 1.0f));
    ENN_ASSERT_OK(enn_dropout_mask(rec, enn_view_of(bm), n, &dp));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *gy = tu_download(ctx, by, n), *gdx = tu_download(ctx, bdx, n), *gm = tu_download(ctx, bm, n);
    unsigned char *keep = malloc(n);
    uint32_t threshold = enn_dropout_threshold(p);
    for (uint32_t i = 0; i < n; i++) {
        keep[i] = (unsigned char)enn_philox_keep(seed, 5, i, threshold);
        cr_assert_eq(gm[i], keep[i] ? 1.0f : 0.0f, "n=%u p=%g: mask[%u] = %g, host keep %d", n, p, i, gm[i], keep[i]);
    }
    double *xd = tu_to_double(x, n), *dyd = tu_to_double(dy, n), *ry = malloc(n * sizeof *ry), *rdx = malloc(n * sizeof *rdx);
    ref_dropout(n, xd, keep, p, ry);
    ref_dropout(n, dyd, keep, p, rdx);
    for (uint32_t i = 0; i < n; i++) rdx[i] += dx0[i];
    double ey = tu_rel_error(gy, ry, n, 1e-30), edx = tu_rel_error(gdx, rdx, n, 1e-30);
    cr_assert_lt(ey, 2e-7, "n=%u p=%g: forward error %g", n, p, ey);
    cr_assert_lt(edx, 2e-7, "n=%u p=%g: backward error %g", n, p, edx);
    free(x), free(dy), free(dx0), free(gy), free(gdx), free(gm), free(keep), free(xd), free(dyd), free(ry), free(rdx);
    enn_buffer *bufs[] = {bx, by, bdy, bdx, bm};
    for (size_t i = 0; i < 5; i++) enn_buffer_destroy(ctx, bufs[i]);
}

Test(dropout, device_matches_host_mask)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 2;
    static const uint32_t sizes[] = {1, 2, 3, 63, 64, 65, 127, 1000, 128 * 128};
    static const float rates[] = {0.3f, 0.0f, 0.5f, 0.9f};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        run_case(ctx, rec, &st, sizes[k], rates[k % 4], 100 + k);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* One seed repeats its mask, another seed or stream gives another; the keep rate is
 * 1 - p within 5 binomial standard errors, and E[y] = E[x] (inverted scaling). */
Test(dropout, stream_properties)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const uint32_t n = 1 << 16;
    const float p = 0.3f;
    float *ones = malloc(n * sizeof *ones);
    for (uint32_t i = 0; i < n; i++) ones[i] = 1.0f;
    enn_buffer *bx = tu_buffer(ctx, ones, n), *y[4];
    enn_dropout_params dps[4] = {{p, 9, 1, {0}}, {p, 9, 1, {0}}, {p, 10, 1, {0}}, {p, 9, 2, {0}}};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (int k = 0; k < 4; k++) {
        y[k] = tu_buffer(ctx, NULL, n);
        ENN_ASSERT_OK(enn_dropout_forward(rec, enn_view_of(y[k]), enn_view_of(bx), n, &dps[k]));
    }
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *h[4];
    for (int k = 0; k < 4; k++) h[k] = tu_download(ctx, y[k], n);
    cr_assert(!memcmp(h[0], h[1], n * sizeof(float)), "one seed gave two masks");
    uint32_t kept = 0, same_seed = 0, same_stream = 0;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        kept += h[0][i] != 0.0f;
        same_seed += (h[0][i] != 0.0f) == (h[2][i] != 0.0f);
        same_stream += (h[0][i] != 0.0f) == (h[3][i] != 0.0f);
        sum += h[0][i];
    }
    /* Independent masks agree on p^2 + (1-p)^2 = 58% of elements, not ~100%. */
    cr_assert_lt(same_seed, 0.6 * n, "another seed agrees on %u of %u", same_seed, n);
    cr_assert_lt(same_stream, 0.6 * n, "another stream agrees on %u of %u", same_stream, n);
    double rate = kept / (double)n, se = sqrt(p * (1 - p) / n);
    cr_assert_lt(fabs(rate - (1 - p)), 5 * se, "keep rate %g, expected %g", rate, 1 - p);
    /* y = keep / (1 - p) on ones: mean 1, standard error se / (1 - p). */
    cr_assert_lt(fabs(sum / n - 1), 5 * se / (1 - p), "mean of y %g", sum / n);
    for (int k = 0; k < 4; k++) free(h[k]), enn_buffer_destroy(ctx, y[k]);
    enn_buffer_destroy(ctx, bx);
    free(ones);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* A caller's mask replaces the stream, in both passes. */
Test(dropout, caller_mask)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 4;
    const uint32_t n = 301;
    float *x = tu_random(&st, n, -1, 1), *m = malloc(n * sizeof *m);
    unsigned char *keep = malloc(n);
    for (uint32_t i = 0; i < n; i++) keep[i] = test_rand_u64(&st) % 4 != 0, m[i] = keep[i] ? 1.0f : 0.0f;
    enn_buffer *bx = tu_buffer(ctx, x, n), *bm = tu_buffer(ctx, m, n), *by = tu_buffer(ctx, NULL, n),
               *bdx = tu_buffer(ctx, NULL, n);
    enn_dropout_params dp = {.p = 0.25f, .seed = 1, .stream = 1, .mask = enn_view_of(bm)};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_dropout_forward(rec, enn_view_of(by), enn_view_of(bx), n, &dp));
    ENN_ASSERT_OK(enn_dropout_backward(rec, enn_view_of(bdx), enn_view_of(bx), n, &dp, 0.0f));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *gy = tu_download(ctx, by, n), *gdx = tu_download(ctx, bdx, n);
    double *xd = tu_to_double(x, n), *ry = malloc(n * sizeof *ry);
    ref_dropout(n, xd, keep, 0.25, ry);
    cr_assert_lt(tu_rel_error(gy, ry, n, 1e-30), 2e-7);
    cr_assert_lt(tu_rel_error(gdx, ry, n, 1e-30), 2e-7);
    free(x), free(m), free(keep), free(gy), free(gdx), free(xd), free(ry);
    enn_buffer_destroy(ctx, bx), enn_buffer_destroy(ctx, bm), enn_buffer_destroy(ctx, by), enn_buffer_destroy(ctx, bdx);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(dropout, rejects_bad_rate)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *b = tu_buffer(ctx, NULL, 4);
    enn_dropout_params dp = {.p = 1.0f};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    cr_assert_eq(enn_dropout_forward(rec, enn_view_of(b), enn_view_of(b), 4, &dp), ENN_ERROR_INVALID_ARGUMENT);
    dp.p = -0.1f;
    cr_assert_eq(enn_dropout_forward(rec, enn_view_of(b), enn_view_of(b), 4, &dp), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, b);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
