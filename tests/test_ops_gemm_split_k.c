/* Split-K GEMM (runtime/ops/gemm_split_k.h) against the double-precision reference
 * (tests/common/ref_gemm.c): odd sizes, K not a multiple of the slices (a tail), both
 * transposes, padded leading dimensions, beta 0, 1 and neither.
 *
 * Tolerance: |gpu - ref| <= (K + S + 8) 2^-24 |alpha| sum_k |a b| + ... (the reference's
 * abs_sum), the classical gamma_n bound for fp32 sums of K products taken in any order,
 * plus the S partial sums and the epilogue; a lost or doubled slice is off by O(1/S) of
 * the magnitude, far outside it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/recorder.h"
#include "device_data.h"
#include "harness.h"
#include "ops/gemm_split_k.h"
#include "ref_gemm.h"

typedef struct split_case {
    uint32_t m, n, k;
    int trans_a, trans_b;
    uint32_t pad_a, pad_b;
    uint32_t splits;
    float alpha, beta;
} split_case;

static void check_split(enn_context *ctx, enn_recorder *rec, const split_case *sc, uint64_t seed)
{
    uint32_t rows_a = sc->trans_a ? sc->k : sc->m, cols_a = sc->trans_a ? sc->m : sc->k;
    uint32_t rows_b = sc->trans_b ? sc->n : sc->k, cols_b = sc->trans_b ? sc->k : sc->n;
    uint32_t lda = cols_a + sc->pad_a, ldb = cols_b + sc->pad_b;
    size_t na = (size_t)rows_a * lda, nb = (size_t)rows_b * ldb, nc = (size_t)sc->m * sc->n;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *got = malloc(nc * 4), *again = malloc(nc * 4);
    double *ref = malloc(nc * 8), *scale = malloc(nc * 8);
    dd_fill_uniform(&seed, a, NULL, na, -1, 1);
    dd_fill_uniform(&seed, b, NULL, nb, -1, 1);
    dd_fill_uniform(&seed, c, NULL, nc, -1, 1);
    ref_gemm_args g = {a, b, c, NULL, sc->m, sc->n, sc->k, sc->trans_a, sc->trans_b, lda, ldb, sc->n, 1, 0, 0, 0,
                       sc->alpha, sc->beta, 0};
    ref_gemm(&g, ref, scale);

    enn_buffer *ba = dd_upload(ctx, a, na * 4), *bb = dd_upload(ctx, b, nb * 4), *bc = dd_upload(ctx, c, nc * 4);
    enn_buffer *ws = dd_upload(ctx, NULL, enn_gemm_split_k_workspace_bytes(sc->m, sc->n, sc->splits));
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = enn_view_of(ba);
    d.b = enn_view_of(bb);
    d.c = enn_view_of(bc);
    d.m = sc->m, d.n = sc->n, d.k = sc->k;
    d.trans_a = sc->trans_a, d.trans_b = sc->trans_b;
    d.lda = lda, d.ldb = ldb;
    d.alpha = sc->alpha, d.beta = sc->beta;
    for (int run = 0; run < 2; run++) {
        ENN_ASSERT_OK(enn_buffer_upload(ctx, bc, 0, c, nc * 4));
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        ENN_ASSERT_OK(enn_gemm_split_k(rec, &d, sc->splits, enn_view_of(ws)));
        ENN_ASSERT_OK(enn_recorder_run(rec));
        dd_download(ctx, bc, 0, run ? again : got, nc * 4);
    }
    double u = ldexp(1.0, -24) * (sc->k + sc->splits + 8);
    size_t bad = 0;
    for (size_t i = 0; i < nc; i++) {
        double err = fabs(got[i] - ref[i]);
        if (err > u * scale[i] && bad++ < 3)
            cr_expect_fail("%u x %u x %u (ta %d tb %d, %u splits, beta %g): C[%zu] %.9g want %.9g (allowed %g)", sc->m,
                           sc->n, sc->k, sc->trans_a, sc->trans_b, sc->splits, sc->beta, i, got[i], ref[i],
                           u * scale[i]);
    }
    cr_expect_eq(bad, 0, "%zu elements outside tolerance", bad);
    cr_expect(!memcmp(got, again, nc * 4), "%u x %u x %u: two runs differ", sc->m, sc->n, sc->k);
    enn_buffer_destroy(ctx, ba), enn_buffer_destroy(ctx, bb), enn_buffer_destroy(ctx, bc), enn_buffer_destroy(ctx, ws);
    free(a), free(b), free(c), free(got), free(again), free(ref), free(scale);
}

Test(ops_gemm_split_k, matches_reference)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const split_case cases[] = {
        {5, 7, 1000, 0, 0, 0, 0, 4, 1.0f, 0.0f},     /* slices of 256, a tail of 232 */
        {13, 9, 3001, 1, 0, 0, 0, 7, 1.0f, 1.0f},    /* transposed A, accumulate */
        {16, 128, 4096, 0, 1, 0, 0, 8, 1.0f, 0.5f},  /* the LM's dh = dlogits W^T, no tail */
        {3, 5, 777, 1, 1, 3, 5, 3, -0.5f, 1.0f},     /* padded, both transposed */
        {33, 17, 5003, 0, 0, 4, 0, 16, 2.0f, 0.0f},  /* 16 slices of 320, tail 203 */
        {4, 4, 100, 0, 0, 0, 0, 4, 1.0f, 1.0f},      /* too short to split: plain enn_gemm */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_split(ctx, rec, &cases[i], 100 + i);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(ops_gemm_split_k, split_count_and_rejections)
{
    /* the language model's dh per chunk of rows splits; its logits GEMM does not */
    cr_expect_gt(enn_gemm_split_k_count(128, 128, 188590), 16);
    cr_expect_eq(enn_gemm_split_k_count(4096, 188590, 128), 1);
    cr_expect_eq(enn_gemm_split_k_count(64, 64, 100), 1);
    uint32_t s = enn_gemm_split_k_count(4096, 128, 188590);
    cr_expect(s >= 1 && enn_gemm_split_k_workspace_bytes(4096, 128, s) <= ((uint64_t)64 << 20), "%u splits", s);

    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *buf = dd_upload(ctx, NULL, 1 << 16);
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = d.b = d.c = enn_view_of(buf);
    d.m = d.n = 4, d.k = 1024;
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    d.bias = enn_view_of(buf);
    cr_expect_eq(enn_gemm_split_k(rec, &d, 4, enn_view_of(buf)), ENN_ERROR_INVALID_ARGUMENT);
    d.bias = (enn_view){0};
    d.act = ENN_ACT_RELU;
    cr_expect_eq(enn_gemm_split_k(rec, &d, 4, enn_view_of(buf)), ENN_ERROR_INVALID_ARGUMENT);
    d.act = ENN_ACT_NONE;
    d.ldc = 8;
    cr_expect_eq(enn_gemm_split_k(rec, &d, 4, enn_view_of(buf)), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, buf);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
