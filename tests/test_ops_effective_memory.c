/* E = M + alpha H: the reference's backward against finite differences, and the device
 * against the reference in both trace modes, overwriting and accumulating. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "ops/effective_memory.h"
#include "ops_testutil.h"
#include "ref_effective_memory.h"

/* E is linear in M and H: central differences are exact to rounding (~1e-13 here). */
Test(effective_memory, reference_matches_finite_differences)
{
    uint64_t st = 8;
    enum { C = 3, NH = 10 };
    double M[NH], H[C * NH], w[C * NH], E[C * NH], dM[NH], dH[C * NH];
    for (int i = 0; i < NH; i++) M[i] = test_rand_uniform(&st, -1, 1);
    for (int i = 0; i < C * NH; i++) H[i] = test_rand_uniform(&st, -1, 1), w[i] = test_rand_uniform(&st, -1, 1);
    ref_effective_memory_backward(C, NH, w, 0.5, dM, dH);
    double *xs[2] = {M, H}, *gs[2] = {dM, dH};
    int ns[2] = {NH, C * NH};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < ns[k]; i++) {
            double keep = xs[k][i], lp = 0, lm = 0;
            xs[k][i] = keep + 1e-3;
            ref_effective_memory_forward(C, NH, M, H, 0.5, E);
            for (int j = 0; j < C * NH; j++) lp += w[j] * E[j];
            xs[k][i] = keep - 1e-3;
            ref_effective_memory_forward(C, NH, M, H, 0.5, E);
            for (int j = 0; j < C * NH; j++) lm += w[j] * E[j];
            xs[k][i] = keep;
            cr_assert_lt(fabs((lp - lm) / 2e-3 - gs[k][i]), 1e-9, "input %d element %d", k, i);
        }
}

/* E is two fp32 roundings (relative 1.2e-7 of max(|M|, alpha |H|)); dM sums B <= 128
 * values in order (~sqrt(B) roundings): 1e-5 relative to each tensor's largest value. */
Test(effective_memory, device_matches_reference)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 9;
    for (int k = 0; k < 8; k++) {
        uint32_t B = k == 7 ? 128 : tu_pick_dim(&st, 40), N = k == 7 ? 64 : tu_pick_dim(&st, 70),
                 h = k == 7 ? 128 : tu_pick_dim(&st, 130);
        int ps = k & 1, acc = (k >> 1) & 1;
        enn_memory_shape s = {B, N, h, ps};
        size_t nh = (size_t)N * h, copies = ps ? B : 1, n = copies * nh;
        const float alpha = 0.5f;
        float *M = tu_random(&st, nh, -0.3, 0.3), *H = tu_random(&st, n, -0.1, 0.1), *dE = tu_random(&st, n, -1, 1);
        float *dM0 = tu_random(&st, nh, -1, 1), *dH0 = tu_random(&st, n, -1, 1);
        enn_buffer *bM = tu_buffer(ctx, M, nh), *bH = tu_buffer(ctx, H, n), *bE = tu_buffer(ctx, NULL, n),
                   *bdE = tu_buffer(ctx, dE, n), *bdM = tu_buffer(ctx, dM0, nh), *bdH = tu_buffer(ctx, dH0, n);
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        ENN_ASSERT_OK(enn_effective_memory_forward(rec, s, enn_view_of(bE), enn_view_of(bM), enn_view_of(bH), alpha));
        ENN_ASSERT_OK(enn_effective_memory_backward(rec, s, enn_view_of(bdM), enn_view_of(bdH), enn_view_of(bdE), alpha,
                                                    acc ? 1.0f : 0.0f, acc ? 1.0f : 0.0f));
        ENN_ASSERT_OK(enn_recorder_run(rec));
        float *gE = tu_download(ctx, bE, n), *gdM = tu_download(ctx, bdM, nh), *gdH = tu_download(ctx, bdH, n);
        double *Md = tu_to_double(M, nh), *Hd = tu_to_double(H, n), *dEd = tu_to_double(dE, n);
        double *rE = malloc(n * sizeof *rE), *rdM = malloc(nh * sizeof *rdM), *rdH = malloc(n * sizeof *rdH);
        ref_effective_memory_forward(copies, nh, Md, Hd, alpha, rE);
        ref_effective_memory_backward(copies, nh, dEd, alpha, rdM, rdH);
        if (acc) {
            for (size_t i = 0; i < nh; i++) rdM[i] += dM0[i];
            for (size_t i = 0; i < n; i++) rdH[i] += dH0[i];
        }
        double eE = tu_rel_error(gE, rE, n, 1e-30), edM = tu_rel_error(gdM, rdM, nh, 1e-30),
               edH = tu_rel_error(gdH, rdH, n, 1e-30);
        cr_log_info("B=%u N=%u h=%u per_sample=%d: errors E %.2g dM %.2g dH %.2g", B, N, h, ps, eE, edM, edH);
        cr_assert_lt(eE, 1e-5, "B=%u N=%u h=%u ps=%d: E error %g", B, N, h, ps, eE);
        cr_assert_lt(edM, 1e-5, "B=%u N=%u h=%u ps=%d: dM error %g", B, N, h, ps, edM);
        cr_assert_lt(edH, 1e-5, "B=%u N=%u h=%u ps=%d: dH error %g", B, N, h, ps, edH);
        free(M), free(H), free(dE), free(dM0), free(dH0), free(gE), free(gdM), free(gdH), free(Md), free(Hd), free(dEd);
        free(rE), free(rdM), free(rdH);
        enn_buffer *bufs[] = {bM, bH, bE, bdE, bdM, bdH};
        for (size_t i = 0; i < 6; i++) enn_buffer_destroy(ctx, bufs[i]);
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
