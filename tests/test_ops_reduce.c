/* Sums over an axis and L2 norms against the double references in
 * tests/common/ref_elementwise.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/recorder.h"
#include "device_data.h"
#include "harness.h"
#include "runtime_helpers.h"
#include "ops/reduce.h"
#include "ref_elementwise.h"

/* Tolerance of fp32 sums, measured against the sum of the terms' magnitudes (so that
 * cancellation does not inflate it): each output adds at most ~rows/8 terms per lane
 * then a tree of 8 (sum_rows; on CPU devices with whole vec4 rows 4 interleaved sums of
 * rows/4 terms), or cols/256 then 8 levels (sum_cols); the typical error is
 * sqrt(k) * 6e-8 for k additions, under 1e-6 for k <= 200,000 / 256; 1e-5. */
#define TOL_SUM 1e-5

static void run_sums(enn_context *ctx, enn_recorder *rec, uint32_t rows, uint32_t cols, uint64_t *seed)
{
    size_t n = (size_t)rows * cols;
    float *x = malloc(n * 4), *sr = malloc(cols * 4ull), *sc = malloc(rows * 4ull);
    double *xd = malloc(n * 8), *srd = malloc(cols * 8ull), *scd = malloc(rows * 8ull);
    double *mr = calloc(cols, 8), *mc = calloc(rows, 8);
    dd_fill_uniform(seed, x, xd, n, -1, 1);
    dd_fill_uniform(seed, sr, srd, cols, -1, 1);
    dd_fill_uniform(seed, sc, scd, rows, -1, 1);
    const double alpha = 0.5, beta = -2.0;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++) {
            double a = fabs(alpha * xd[(size_t)r * cols + c]);
            mr[c] += a, mc[r] += a;
        }
    for (uint32_t c = 0; c < cols; c++) mr[c] += fabs(beta * srd[c]);
    for (uint32_t r = 0; r < rows; r++) mc[r] += fabs(beta * scd[r]);
    enn_buffer *bx = dd_upload(ctx, x, n * 4), *bsr = dd_upload(ctx, sr, cols * 4ull), *bsc = dd_upload(ctx, sc, rows * 4ull);
    enn_buffer *bsr0 = dd_upload(ctx, NULL, cols * 4ull);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_sum_rows(rec, rows, cols, enn_view_of(bx), (float)alpha, (float)beta, enn_view_of(bsr)));
    ENN_ASSERT_OK(enn_sum_cols(rec, rows, cols, enn_view_of(bx), (float)alpha, (float)beta, enn_view_of(bsc)));
    ENN_ASSERT_OK(enn_sum_rows(rec, rows, cols, enn_view_of(bx), 1.0f, 0.0f, enn_view_of(bsr0)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, bsr, 0, sr, cols * 4ull);
    dd_download(ctx, bsc, 0, sc, rows * 4ull);
    ref_sum_rows(rows, cols, xd, alpha, beta, srd);
    ref_sum_cols(rows, cols, xd, alpha, beta, scd);
    size_t w;
    double e = dd_max_scaled_error(sr, srd, mr, cols, &w);
    cr_expect(e <= TOL_SUM, "sum_rows %u x %u: error %g at %zu (%g vs %g)", rows, cols, e, w, sr[w], srd[w]);
    e = dd_max_scaled_error(sc, scd, mc, rows, &w);
    cr_expect(e <= TOL_SUM, "sum_cols %u x %u: error %g at %zu (%g vs %g)", rows, cols, e, w, sc[w], scd[w]);
    /* beta = 0 overwrites (the buffer held zeros, so also check against the plain sum) */
    dd_download(ctx, bsr0, 0, sr, cols * 4ull);
    for (uint32_t c = 0; c < cols; c++) srd[c] = 0, mr[c] = 0;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++) srd[c] += xd[(size_t)r * cols + c], mr[c] += fabs(xd[(size_t)r * cols + c]);
    e = dd_max_scaled_error(sr, srd, mr, cols, &w);
    cr_expect(e <= TOL_SUM, "sum_rows (beta 0) %u x %u: error %g at %zu", rows, cols, e, w);
    enn_buffer_destroy(ctx, bx), enn_buffer_destroy(ctx, bsr), enn_buffer_destroy(ctx, bsc), enn_buffer_destroy(ctx, bsr0);
    free(x), free(sr), free(sc), free(xd), free(srd), free(scd), free(mr), free(mc);
}

Test(ops_reduce, sums_over_an_axis)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 31;
    /* Whole vec4 rows (the texel kernel on CPU devices) with and without a tail of rows
     * past a multiple of 4, and the others (the storage-buffer kernel). */
    const uint32_t shapes[][2] = {{1, 1}, {1, 7}, {7, 1}, {13, 31}, {1031, 257}, {1031, 256}, {3, 4}, {128 * 28, 128},
                                  {128, 10}, {128 * 32, 64}, {3, 200003}, {5, 200004}, {200003, 3}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) run_sums(ctx, rec, shapes[i][0], shapes[i][1], &seed);
    for (int k = 0; k < 4; k++) /* random shapes */
        run_sums(ctx, rec, 1 + (uint32_t)(test_rand_u64(&seed) % 2000), 1 + (uint32_t)(test_rand_u64(&seed) % 600), &seed);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* Sums over rows larger than one binding may be go a chunk of rows at a time (64 KiB
 * bindings, ENN_MAX_BINDING_BYTES); with 400-byte rows the chunks start at elements that
 * are and are not multiples of 4, so on CPU devices both kernels take turns. */
Test(ops_reduce, sums_over_rows_in_windows)
{
    test_setenv("ENN_MAX_BINDING_BYTES", "65536");
    enn_context *ctx = test_context();
    unsetenv("ENN_MAX_BINDING_BYTES");
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 35;
    run_sums(ctx, rec, 3000, 100, &seed);
    run_sums(ctx, rec, 777, 260, &seed);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* Squares are positive, so a plain relative error, at most 2^-24 per addition in the
 * longest chain: up to 4096 terms per chunk (GPUs: 16 per lane, then a tree of 256;
 * CPU devices: 128 per running sum, 4 sums per lane, then a tree of 8), then a tree over
 * the chunks; 1e-5. */
#define TOL_NORM 1e-5

Test(ops_reduce, global_l2_norm)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 32;
    const uint32_t sizes[] = {1, 2, 4095, 4096, 4097, 100003, 219018, 0, 0, 0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint32_t n = sizes[i] ? sizes[i] : 1 + (uint32_t)(test_rand_u64(&seed) % 50000); /* 0: a random size */
        float *x = malloc(n * 4ull), norm;
        double *xd = malloc(n * 8ull);
        dd_fill_uniform(&seed, x, xd, n, -1, 1);
        enn_buffer *bx = dd_upload(ctx, x, n * 4ull), *bout = dd_upload(ctx, NULL, 4);
        enn_buffer *bws = dd_upload(ctx, NULL, enn_l2_norm_workspace_bytes(n));
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        ENN_ASSERT_OK(enn_l2_norm(rec, n, enn_view_of(bx), enn_view_of(bws), enn_view_of(bout)));
        ENN_ASSERT_OK(enn_recorder_run(rec));
        dd_download(ctx, bout, 0, &norm, 4);
        double want = sqrt(ref_sumsq(n, xd));
        cr_expect(fabs(norm - want) <= TOL_NORM * want, "n %u: norm %.9g, want %.9g", n, norm, want);
        enn_buffer_destroy(ctx, bx), enn_buffer_destroy(ctx, bout), enn_buffer_destroy(ctx, bws);
        free(x), free(xd);
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* A flat buffer larger than one binding may be is read a window of chunks at a time:
 * with the limit lowered to 64 KiB (ENN_MAX_BINDING_BYTES), 0.4 and 0.9 MB buffers give
 * the reference's norm, bit-identical to the same norm read in one binding. */
Test(ops_reduce, global_l2_norm_in_windows)
{
    const uint32_t sizes[] = {100003, 219018};
    float norms[2][2];
    uint64_t seed = 34;
    float *x[2];
    double want[2];
    for (int i = 0; i < 2; i++) {
        x[i] = malloc(sizes[i] * 4ull);
        double *xd = malloc(sizes[i] * 8ull);
        dd_fill_uniform(&seed, x[i], xd, sizes[i], -1, 1);
        want[i] = sqrt(ref_sumsq(sizes[i], xd));
        free(xd);
    }
    for (int lowered = 0; lowered < 2; lowered++) {
        if (lowered) test_setenv("ENN_MAX_BINDING_BYTES", "65536");
        enn_context *ctx = test_context();
        unsetenv("ENN_MAX_BINDING_BYTES");
        enn_recorder *rec;
        ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
        for (int i = 0; i < 2; i++) {
            uint32_t n = sizes[i];
            enn_buffer *bx = dd_upload(ctx, x[i], n * 4ull), *bout = dd_upload(ctx, NULL, 4);
            enn_buffer *bws = dd_upload(ctx, NULL, enn_l2_norm_workspace_bytes(n));
            ENN_ASSERT_OK(enn_recorder_begin(rec));
            ENN_ASSERT_OK(enn_l2_norm(rec, n, enn_view_of(bx), enn_view_of(bws), enn_view_of(bout)));
            ENN_ASSERT_OK(enn_recorder_run(rec));
            uint32_t d = enn_recorder_get_stats(rec).dispatches;
            if (lowered) cr_expect_gt(d, 2, "n %u: %u dispatches, no windows", n, d);
            dd_download(ctx, bout, 0, &norms[lowered][i], 4);
            cr_expect(fabs(norms[lowered][i] - want[i]) <= TOL_NORM * want[i], "n %u (limit lowered: %d): norm %.9g, "
                      "want %.9g", n, lowered, norms[lowered][i], want[i]);
            enn_buffer_destroy(ctx, bx), enn_buffer_destroy(ctx, bout), enn_buffer_destroy(ctx, bws);
        }
        enn_recorder_destroy(rec);
        test_context_finish(ctx);
    }
    for (int i = 0; i < 2; i++) {
        cr_expect(!memcmp(&norms[0][i], &norms[1][i], 4), "n %u: %.9g in windows, %.9g whole", sizes[i], norms[1][i],
                  norms[0][i]);
        free(x[i]);
    }
}

/* The ENN's tensors (d = 28, h = 128, N = 64) laid out in one flat buffer at aligned
 * offsets, plus a single-float tensor and one spanning many chunks. */
static uint32_t enn_layout(enn_param_range *r)
{
    const uint32_t counts[] = {28 * 128, 128, 64 * 128, 384 * 384, 384, 384 * 128, 128, 128, 128, 128, 128, 1, 3 * 4096 + 5};
    uint32_t n = sizeof counts / sizeof counts[0], at = 0;
    for (uint32_t k = 0; k < n; k++) {
        r[k] = (enn_param_range){at, counts[k], k % 2};
        at += (counts[k] + 63) / 64 * 64;
    }
    return n;
}

Test(ops_reduce, per_tensor_norms)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_param_range ranges[16];
    uint32_t k = enn_layout(ranges);
    enn_param_table *t;
    ENN_ASSERT_OK(enn_param_table_create(ctx, ranges, k, &t));
    size_t n = t->extent;
    float *x = malloc(n * 4), got[16], norms[16];
    double *xd = malloc(n * 8);
    uint64_t seed = 33;
    dd_fill_uniform(&seed, x, xd, n, -1, 1);
    enn_buffer *bx = dd_upload(ctx, x, n * 4), *bn = dd_upload(ctx, NULL, 64);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_param_table_sumsq(rec, t, enn_view_of(bx), enn_view_of(t->sumsq), 0));
    ENN_ASSERT_OK(enn_param_table_sumsq(rec, t, enn_view_of(bx), enn_view_of(bn), 1));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, t->sumsq, 0, got, k * 4);
    dd_download(ctx, bn, 0, norms, k * 4);
    for (uint32_t i = 0; i < k; i++) {
        double want = ref_sumsq(ranges[i].count, xd + ranges[i].offset);
        cr_expect(fabs(got[i] - want) <= TOL_NORM * want, "tensor %u: sum of squares %.9g, want %.9g", i, got[i], want);
        cr_expect(fabs(norms[i] - sqrt(want)) <= TOL_NORM * sqrt(want), "tensor %u: norm %.9g, want %.9g", i, norms[i],
                  sqrt(want));
    }
    enn_buffer_destroy(ctx, bx), enn_buffer_destroy(ctx, bn);
    enn_param_table_destroy(ctx, t);
    free(x), free(xd);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(ops_reduce, rejects_bad_tables)
{
    enn_context *ctx = test_context();
    enn_param_table *t = NULL;
    enn_param_range overlap[2] = {{0, 10, 0}, {5, 10, 0}}, empty[1] = {{0, 0, 0}};
    cr_expect_eq(enn_param_table_create(ctx, overlap, 2, &t), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(enn_param_table_create(ctx, empty, 1, &t), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_null(t);
    test_context_finish(ctx);
}
