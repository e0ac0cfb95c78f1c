/* The fused memory step against the separate ops (effective memory, cosine attention,
 * Hebbian trace) and against the double reference composition, in both trace modes and
 * all noise modes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
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

static void run_case(enn_context *ctx, enn_recorder *rec, uint64_t *st, uint32_t B, uint32_t N, uint32_t h, int ps,
                     enn_noise_mode noise)
{
    enn_memory_shape s = {B, N, h, ps};
    size_t nz = (size_t)B * h, na = (size_t)B * N, nm = (size_t)N * h, nH = nm * (ps ? B : 1);
    const float alpha = 0.5f, tau_e = 0.75f;
    float *z = tu_random(st, nz, -1, 1), *M = tu_random(st, nm, -0.3, 0.3), *H = tu_random(st, nH, -0.12, 0.12),
          *xi = tu_random(st, nH, -0.01, 0.01);
    enn_buffer *bz = tu_buffer(ctx, z, nz), *bM = tu_buffer(ctx, M, nm), *bH = tu_buffer(ctx, H, nH),
               *bxi = tu_buffer(ctx, xi, nH), *ba = tu_buffer(ctx, NULL, na), *bm = tu_buffer(ctx, NULL, nz),
               *bHn = tu_buffer(ctx, NULL, nH), *bE = tu_buffer(ctx, NULL, nH), *ba2 = tu_buffer(ctx, NULL, na),
               *bm2 = tu_buffer(ctx, NULL, nz), *bHn2 = tu_buffer(ctx, NULL, nH);
    enn_hebbian_params hp = {.eta = 0.05f, .clip = 0.1f,
                             .noise = {.mode = noise, .sigma = 0.003f, .seed = 99, .stream = 4, .xi = enn_view_of(bxi)}};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_memory_step_forward(rec, s, enn_view_of(ba), enn_view_of(bm), enn_view_of(bHn), enn_view_of(bz),
                                          enn_view_of(bM), enn_view_of(bH), alpha, tau_e, &hp));
    /* The separate ops; the Hebbian update from the fused kernel's a, which must give
     * the fused kernel's H_new bit for bit. */
    ENN_ASSERT_OK(enn_effective_memory_forward(rec, s, enn_view_of(bE), enn_view_of(bM), enn_view_of(bH), alpha));
    ENN_ASSERT_OK(enn_cosine_attention_forward(rec, s, enn_view_of(ba2), enn_view_of(bm2), enn_view_of(bz),
                                               enn_view_of(bE), tau_e));
    ENN_ASSERT_OK(enn_hebbian_trace_forward(rec, s, enn_view_of(bHn2), enn_view_of(bH), enn_view_of(ba), enn_view_of(bz),
                                            &hp));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *ga = tu_download(ctx, ba, na), *gm = tu_download(ctx, bm, nz), *gHn = tu_download(ctx, bHn, nH),
          *ga2 = tu_download(ctx, ba2, na), *gm2 = tu_download(ctx, bm2, nz), *gHn2 = tu_download(ctx, bHn2, nH);
    cr_assert(!memcmp(gHn, gHn2, nH * sizeof(float)), "B=%u N=%u h=%u ps=%d noise=%d: fused H_new differs from hebbian_trace",
              B, N, h, ps, noise);

    /* The reference composition in double. */
    double *zd = tu_to_double(z, nz), *Md = tu_to_double(M, nm), *Hd = tu_to_double(H, nH);
    double *Ed = malloc(nH * sizeof *Ed), *ra = malloc(na * sizeof *ra), *rm = malloc(nz * sizeof *rm),
           *rHn = malloc(nH * sizeof *rHn), *xid = NULL;
    if (noise != ENN_NOISE_OFF) {
        xid = malloc(nH * sizeof *xid);
        for (size_t i = 0; i < nH; i++)
            xid[i] = noise == ENN_NOISE_BUFFER ? xi[i] : hp.noise.sigma * enn_philox_normal(99, 4, (uint32_t)i);
    }
    ref_effective_memory_forward(ps ? B : 1, nm, Md, Hd, alpha, Ed);
    ref_cosine_attention_forward(B, N, h, ps, zd, Ed, tau_e, ra, rm);
    ref_hebbian_trace_forward(B, N, h, ps, Hd, ra, zd, xid, hp.eta, hp.clip, rHn, NULL);
    /* fp32 sums of length <= 130 (see test_ops_cosine_attention) and the batch mean
     * (see test_ops_hebbian_trace): 1e-5 of each tensor's largest value. */
    double e[5] = {tu_rel_error(ga, ra, na, 1e-30), tu_rel_error(gm, rm, nz, 1e-30), tu_rel_error(gHn, rHn, nH, 1e-30),
                   tu_rel_error(ga2, ra, na, 1e-30), tu_rel_error(gm2, rm, nz, 1e-30)};
    cr_log_info("B=%u N=%u h=%u ps=%d noise=%d: errors a %.2g m %.2g H_new %.2g (separate ops: a %.2g m %.2g)", B, N, h,
                ps, noise, e[0], e[1], e[2], e[3], e[4]);
    for (int k = 0; k < 5; k++) cr_assert_lt(e[k], 1e-5, "B=%u N=%u h=%u ps=%d: error %d = %g", B, N, h, ps, k, e[k]);
    free(z), free(M), free(H), free(xi), free(ga), free(gm), free(gHn), free(ga2), free(gm2), free(gHn2);
    free(zd), free(Md), free(Hd), free(Ed), free(ra), free(rm), free(rHn), free(xid);
    enn_buffer *bufs[] = {bz, bM, bH, bxi, ba, bm, bHn, bE, ba2, bm2, bHn2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) enn_buffer_destroy(ctx, bufs[i]);
}

Test(memory_step, fused_matches_separate_ops_and_reference)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 31;
    for (int k = 0; k < 8; k++) {
        uint32_t B = tu_pick_dim(&st, 40), N = tu_pick_dim(&st, 70), h = tu_pick_dim(&st, 130);
        run_case(ctx, rec, &st, B, N, h, k & 1, (enn_noise_mode)(k % 3));
    }
    run_case(ctx, rec, &st, 128, 64, 128, 0, ENN_NOISE_PHILOX);
    run_case(ctx, rec, &st, 128, 64, 128, 1, ENN_NOISE_PHILOX);
    /* A per-sample trace's Philox noise four blocks at a time (CPU devices): h = 132 (33
     * vectors) goes round the 32-vector pass twice, the second time with one vector. */
    run_case(ctx, rec, &st, 9, 70, 132, 1, ENN_NOISE_PHILOX);
    /* Each noise mode on the vec4 paths (on CPU devices compiled into the pipeline). */
    for (int mode = 0; mode < 3; mode++)
        for (int per_sample = 0; per_sample < 2; per_sample++)
            run_case(ctx, rec, &st, 9, 10, 36, per_sample, (enn_noise_mode)mode);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* The launcher lays work out per device type (8 rows per workgroup on CPU devices, one
 * on GPUs); lavapipe is a CPU device, so posing as a GPU tests the GPU layout here. */
Test(memory_step, gpu_layout)
{
    enn_context *ctx = test_context();
    enn_device_type real = ctx->caps.device_type;
    ctx->caps.device_type = ENN_DEVICE_DISCRETE_GPU;
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 32;
    for (int k = 0; k < 6; k++) {
        uint32_t B = tu_pick_dim(&st, 20), N = tu_pick_dim(&st, 70), h = tu_pick_dim(&st, 40) * 4 - (k >= 4);
        run_case(ctx, rec, &st, B, N, h, k & 1, (enn_noise_mode)(k % 3));
    }
    enn_recorder_destroy(rec);
    ctx->caps.device_type = real;
    test_context_finish(ctx);
}
