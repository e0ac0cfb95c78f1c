/* Adam / AdamW with per-tensor and global clipnorm against the double reference in
 * tests/common/ref_adam.c (Keras's formula), over several steps with a changing
 * learning rate. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/recorder.h"
#include "device_data.h"
#include "harness.h"
#include "runtime_helpers.h"
#include "ops/adam.h"
#include "ref_adam.h"

/* Adam's step is nearly invariant to a constant scale of g, so m and v (which scale
 * with the clip factor) are what shows a wrong or missing clip.
 * Tolerances. Each step's update alpha m / (sqrt(v) + eps) is a few fp32 operations on
 * m and v that carry ~1e-6 relative error (their own roundings plus the clip factor from
 * an fp32 norm): 1e-5 of the sum of the steps' |update|, plus the rounding of p itself
 * (at most 2^-24 |p| each time, twice per step with weight decay: after the decay and
 * after the update). m is checked against the sum of
 * its terms' magnitudes (it may cancel), v (positive) relatively: 1e-5. */
#define TOL 1e-5
#define STEPS 3

/* With `reversed` 1, the table lists the tensors in the opposite order of their offsets
 * (what binding windows must cope with); with 2, the tensors are packed end to end, so
 * some start off a multiple of 4 floats (no vec4 kernel on CPU devices). */
static uint32_t enn_layout(enn_param_range *r, int reversed)
{
    /* W_z [28,128], b_z, M [64,128], W_u [384,384], b_u, W_o [384,128], b_o, two layer
     * norms' gain and bias, a one-float tensor and one spanning several chunks. */
    const uint32_t counts[] = {28 * 128, 128, 64 * 128, 384 * 384, 384, 384 * 128, 128, 128, 128, 128, 128, 1, 3 * 4096 + 5};
    uint32_t n = sizeof counts / sizeof counts[0], at = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = reversed ? n - 1 - i : i;
        r[k] = (enn_param_range){at, counts[k], k % 2 ? ENN_PARAM_DECAY : 0};
        at += reversed == 2 ? counts[k] : (counts[k] + 63) / 64 * 64;
    }
    return n;
}

typedef struct adam_case {
    enn_clip_mode clip;
    float clipnorm;
    float weight_decay;
    uint64_t first_step;
    int reversed;        /* 1: table order opposite to the offsets; 2: packed (see enn_layout) */
} adam_case;

/* Runs the case and checks it against the reference; with `out`, also leaves the final
 * p, m, v there (3 x extent floats) and returns the dispatches of the last update. */
static uint32_t run_case(enn_context *ctx, enn_recorder *rec, const adam_case *c, float *out)
{
    enn_param_range ranges[16];
    ref_adam_tensor rt[16];
    uint32_t K = enn_layout(ranges, c->reversed);
    for (uint32_t k = 0; k < K; k++) rt[k] = (ref_adam_tensor){ranges[k].offset, ranges[k].count, ranges[k].flags & 1};
    enn_param_table *t;
    ENN_ASSERT_OK(enn_param_table_create(ctx, ranges, K, &t));
    size_t n = t->extent;
    float *p = calloc(n, 4), *g = calloc(n, 4), *m = calloc(n, 4), *v = calloc(n, 4);
    double *pd = calloc(n, 8), *gd = calloc(n, 8), *md = calloc(n, 8), *vd = calloc(n, 8);
    double *dmag = calloc(n, 8), *mmag = calloc(n, 8), *p_before = calloc(n, 8);
    uint64_t seed = 41 + c->clip * 7 + c->first_step;
    for (uint32_t k = 0; k < K; k++) dd_fill_uniform(&seed, p + ranges[k].offset, pd + ranges[k].offset, ranges[k].count, -1, 1);
    enn_buffer *bp = dd_upload(ctx, p, n * 4), *bg = dd_upload(ctx, NULL, n * 4);
    enn_buffer *bm = dd_upload(ctx, NULL, n * 4), *bv = dd_upload(ctx, NULL, n * 4);
    const float lrs[STEPS] = {1e-3f, 5e-4f, 2e-3f};
    uint32_t dispatches = 0;
    for (int s = 0; s < STEPS; s++) {
        /* Gradients whose tensor norms straddle clipnorm: scales 0.01, 0.3 and 3. */
        for (uint32_t k = 0; k < K; k++) {
            double sc = k % 3 == 0 ? 0.01 : k % 3 == 1 ? 0.3 : 3.0;
            dd_fill_uniform(&seed, g + ranges[k].offset, NULL, ranges[k].count, -sc, sc);
        }
        for (size_t i = 0; i < n; i++) gd[i] = g[i];
        ENN_ASSERT_OK(enn_buffer_upload(ctx, bg, 0, g, n * 4));
        enn_adam_params hp = enn_adam_params_keras();
        hp.lr = lrs[s];
        hp.step = c->first_step + s;
        hp.clip = c->clip;
        hp.clipnorm = c->clipnorm;
        hp.weight_decay = c->weight_decay;
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        ENN_ASSERT_OK(enn_adam_update(rec, t, &hp, enn_view_of(bp), enn_view_of(bg), enn_view_of(bm), enn_view_of(bv)));
        ENN_ASSERT_OK(enn_recorder_run(rec));
        dispatches = enn_recorder_get_stats(rec).dispatches;
        /* The reference takes fp32's view of the hyper-parameters, as the kernel does. */
        ref_adam_hparams rh = {hp.lr, hp.beta1, hp.beta2, hp.epsilon, hp.weight_decay, hp.step, (int)hp.clip, hp.clipnorm};
        memcpy(p_before, pd, n * 8);
        /* m's magnitude: the same recurrence over |g| (clip factor <= 1 left out: an upper bound) */
        for (size_t i = 0; i < n; i++) mmag[i] = mmag[i] * rh.beta1 + (1 - rh.beta1) * fabs(gd[i]);
        ref_adam_update(K, rt, &rh, pd, gd, md, vd);
        for (size_t i = 0; i < n; i++) dmag[i] += fabs(pd[i] - p_before[i]);
    }
    dd_download(ctx, bp, 0, p, n * 4);
    dd_download(ctx, bm, 0, m, n * 4);
    dd_download(ctx, bv, 0, v, n * 4);
    int shown = 0;
    for (uint32_t k = 0; k < K; k++)
        for (uint32_t j = 0; j < ranges[k].count; j++) {
            size_t i = ranges[k].offset + j;
            double ep = fabs(p[i] - pd[i]), allowed = TOL * dmag[i] + 2 * STEPS * ldexp(fabs(pd[i]), -24);
            double em = fabs(m[i] - md[i]) / (mmag[i] + 1e-30), ev = fabs(v[i] - vd[i]) / (vd[i] + 1e-30);
            if ((ep > allowed || em > TOL || ev > TOL) && shown++ < 5)
                cr_expect_fail("clip %d decay %g step %llu: tensor %u [%u]: p %.9g want %.9g (allowed %g); m %g want %g; "
                               "v %g want %g",
                               c->clip, c->weight_decay, (unsigned long long)c->first_step, k, j, p[i], pd[i], allowed,
                               m[i], md[i], v[i], vd[i]);
        }
    cr_expect_eq(shown, 0, "%d entries outside tolerance", shown);
    if (out) {
        memcpy(out, p, n * 4);
        memcpy(out + n, m, n * 4);
        memcpy(out + 2 * n, v, n * 4);
    }
    enn_buffer_destroy(ctx, bp), enn_buffer_destroy(ctx, bg), enn_buffer_destroy(ctx, bm), enn_buffer_destroy(ctx, bv);
    enn_param_table_destroy(ctx, t);
    free(p), free(g), free(m), free(v), free(pd), free(gd), free(md), free(vd), free(dmag), free(mmag), free(p_before);
    return dispatches;
}

Test(ops_adam, matches_keras_reference)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const adam_case cases[] = {
        {ENN_CLIP_NONE, 0, 0, 1, 0},
        {ENN_CLIP_PER_TENSOR, 1.0f, 0, 1, 0},   /* the paper's clipnorm = 1.0 */
        {ENN_CLIP_GLOBAL, 5.0f, 0, 1, 0},
        {ENN_CLIP_PER_TENSOR, 1.0f, 0.01f, 1000, 0}, /* AdamW, late steps: bias correction near 1 */
        {ENN_CLIP_GLOBAL, 5.0f, 0.01f, 1, 2},        /* tensors off vec4 boundaries */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(ctx, rec, &cases[i], NULL);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* Flat buffers larger than one binding may be (the 188,590-word language model's 195 MB
 * against lavapipe's 128 MiB) are bound a window of chunks at a time. Lowering the limit
 * the runtime believes to 64 KiB (ENN_MAX_BINDING_BYTES) splits this 0.9 MB table into
 * ~15 windows; each case must match the reference and be bit-identical to the same
 * steps bound whole (each chunk's norm and update are computed exactly as before). */
Test(ops_adam, windows_when_buffers_exceed_one_binding)
{
    const adam_case cases[] = {
        {ENN_CLIP_PER_TENSOR, 1.0f, 0, 1, 0},
        {ENN_CLIP_GLOBAL, 5.0f, 0, 1, 0},
        {ENN_CLIP_PER_TENSOR, 1.0f, 0.01f, 1000, 1},
        {ENN_CLIP_GLOBAL, 5.0f, 0, 1, 1},
    };
    const size_t ncase = sizeof cases / sizeof cases[0];
    /* the larger of the two layouts' extents (the reversed one's last tensor is padded) */
    size_t n = 0;
    for (int reversed = 0; reversed < 2; reversed++) {
        enn_param_range ranges[16];
        uint32_t K = enn_layout(ranges, reversed);
        for (uint32_t k = 0; k < K; k++)
            if ((size_t)ranges[k].offset + ranges[k].count > n) n = (size_t)ranges[k].offset + ranges[k].count;
    }
    float *whole = calloc(ncase * 3 * n, 4), *windowed = calloc(ncase * 3 * n, 4);
    for (int lowered = 0; lowered < 2; lowered++) {
        if (lowered) test_setenv("ENN_MAX_BINDING_BYTES", "65536");
        enn_context *ctx = test_context();
        unsetenv("ENN_MAX_BINDING_BYTES");
        enn_capabilities caps = {0};
        ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
        if (lowered) cr_assert_eq(caps.max_storage_buffer_range, 65536, "ENN_MAX_BINDING_BYTES was not applied");
        else cr_assert_gt(caps.max_storage_buffer_range, n * 4, "the device binds less than the table");
        enn_recorder *rec;
        ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
        for (size_t i = 0; i < ncase; i++) {
            uint32_t d = run_case(ctx, rec, &cases[i], (lowered ? windowed : whole) + i * 3 * n);
            /* bound whole: 2 norm passes + 1 update; windowed: a pass per window */
            if (lowered) cr_expect_geq(d, 3 + 2 * (n * 4 / 65536), "case %zu: %u dispatches, too few windows", i, d);
            else cr_expect_eq(d, 3, "case %zu: %u dispatches bound whole", i, d);
        }
        enn_recorder_destroy(rec);
        test_context_finish(ctx);
    }
    for (size_t i = 0; i < ncase; i++) {
        size_t diff = 0, first = 0;
        for (size_t j = 0; j < 3 * n; j++)
            if (memcmp(&whole[i * 3 * n + j], &windowed[i * 3 * n + j], 4) && !diff++) first = j;
        cr_expect_eq(diff, 0, "case %zu: %zu of p, m, v differ between windowed and whole bindings (first: %s[%zu])",
                     i, diff, first < n ? "p" : first < 2 * n ? "m" : "v", first % n);
    }
    free(whole), free(windowed);
}

/* A known case: one tensor whose gradient has norm 2, clipped to 1, must update exactly
 * as the gradient halved without clipping (the factor 1/2 is exact in fp32). */
Test(ops_adam, clipping_equals_prescaled_gradient)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_param_range r = {0, 4, 0};
    enn_param_table *t;
    ENN_ASSERT_OK(enn_param_table_create(ctx, &r, 1, &t));
    const float p0[4] = {0.5f, -0.25f, 1.0f, 2.0f}, g[4] = {1.0f, -1.0f, 1.0f, 1.0f}; /* norm 2 */
    const float ghalf[4] = {0.5f, -0.5f, 0.5f, 0.5f};
    float a[4], b[4];
    for (int run = 0; run < 2; run++) {
        enn_buffer *bp = dd_upload(ctx, p0, 16), *bg = dd_upload(ctx, run ? ghalf : g, 16);
        enn_buffer *bm = dd_upload(ctx, NULL, 16), *bv = dd_upload(ctx, NULL, 16);
        enn_adam_params hp = enn_adam_params_keras();
        hp.clip = run ? ENN_CLIP_NONE : ENN_CLIP_PER_TENSOR;
        hp.clipnorm = 1.0f;
        /* a second step too, so m and v both matter */
        for (hp.step = 1; hp.step <= 2; hp.step++) {
            ENN_ASSERT_OK(enn_recorder_begin(rec));
            ENN_ASSERT_OK(enn_adam_update(rec, t, &hp, enn_view_of(bp), enn_view_of(bg), enn_view_of(bm), enn_view_of(bv)));
            ENN_ASSERT_OK(enn_recorder_run(rec));
        }
        dd_download(ctx, bp, 0, run ? b : a, 16);
        enn_buffer_destroy(ctx, bp), enn_buffer_destroy(ctx, bg), enn_buffer_destroy(ctx, bm), enn_buffer_destroy(ctx, bv);
    }
    /* Both runs see exactly the gradient 0.5 * g (the clip factor 1/2 is exact). */
    for (int i = 0; i < 4; i++) cr_expect_eq(a[i], b[i], "entry %d: clipped %.9g, prescaled %.9g", i, a[i], b[i]);
    for (int i = 0; i < 4; i++) cr_expect(a[i] != p0[i], "entry %d did not move", i);
    enn_param_table_destroy(ctx, t);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(ops_adam, rejects_bad_parameters)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_param_range r = {0, 4, 0};
    enn_param_table *t;
    ENN_ASSERT_OK(enn_param_table_create(ctx, &r, 1, &t));
    enn_buffer *b = dd_upload(ctx, NULL, 16);
    enn_adam_params hp = enn_adam_params_keras();
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    hp.step = 0;
    cr_expect_eq(enn_adam_update(rec, t, &hp, enn_view_of(b), enn_view_of(b), enn_view_of(b), enn_view_of(b)),
                 ENN_ERROR_INVALID_ARGUMENT);
    hp.step = 1;
    hp.clip = ENN_CLIP_GLOBAL;
    hp.clipnorm = 0;
    cr_expect_eq(enn_adam_update(rec, t, &hp, enn_view_of(b), enn_view_of(b), enn_view_of(b), enn_view_of(b)),
                 ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, b);
    enn_param_table_destroy(ctx, t);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
