/* The Hebbian trace update: the double reference's backward against finite differences
 * of its forward; the device's forward and backward against the reference over random
 * and edge shapes, both trace modes and all three noise modes, with clipping active; the
 * noise stream's reproducibility, its equality with the host's Philox, and its moments. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "harness.h"
#include "ops/hebbian_trace.h"
#include "ops/philox.h"
#include "ops_testutil.h"
#include "ref_hebbian_trace.h"

#define CLIP 0.1

static size_t trace_elems(uint32_t B, uint32_t N, uint32_t h, int ps)
{
    return (size_t)(ps ? B : 1) * N * h;
}

/* Moves H where the unclipped value lies within `margin` of a clip bound, so that the
 * clip mask cannot depend on rounding (fp32 on the device) or on a finite-difference
 * step. Shifting H[i] moves only pre[i], by (1 - eta) times the shift. */
static void keep_off_bounds(uint32_t B, uint32_t N, uint32_t h, int ps, float *H, const float *a, const float *z,
                            const double *xi, double eta, double margin)
{
    size_t n = trace_elems(B, N, h, ps);
    double *Hd = tu_to_double(H, n), *ad = tu_to_double(a, (size_t)B * N), *zd = tu_to_double(z, (size_t)B * h);
    double *pre = malloc(n * sizeof *pre), *hn = malloc(n * sizeof *hn);
    ref_hebbian_trace_forward(B, N, h, ps, Hd, ad, zd, xi, eta, CLIP, hn, pre);
    for (size_t i = 0; i < n; i++) {
        double dist = fabs(pre[i]) - CLIP; /* > 0 outside */
        if (fabs(dist) < margin) {
            double away = (dist >= 0 ? 1 : -1) * (pre[i] >= 0 ? 1 : -1); /* sign that increases |dist| */
            H[i] += (float)(away * 2 * margin / (1 - eta));
        }
    }
    free(Hd), free(ad), free(zd), free(pre), free(hn);
}

/* Attention-like rows: positive, summing to one. */
static float *random_attention(uint64_t *st, uint32_t B, uint32_t N)
{
    float *a = tu_random(st, (size_t)B * N, 0.0, 1.0);
    for (uint32_t b = 0; b < B; b++) {
        double s = 0;
        for (uint32_t n = 0; n < N; n++) s += a[(size_t)b * N + n];
        for (uint32_t n = 0; n < N; n++) a[(size_t)b * N + n] = (float)(a[(size_t)b * N + n] / s);
    }
    return a;
}

/* Finite differences (step 1e-7, double) of L = sum(w * H_new) against the reference's
 * gradients. With every unclipped value at least 1e-5 from a bound, the step never
 * crosses a kink, L is quadratic in (a, z) and linear in H, and central differences are
 * exact up to rounding (~1e-16/1e-7): bound 1e-7 relative. */
Test(hebbian_trace, reference_matches_finite_differences)
{
    uint64_t st = 3;
    for (int ps = 0; ps <= 1; ps++) {
        const uint32_t B = 3, N = 4, h = 5;
        const double eta = 0.3;
        size_t n = trace_elems(B, N, h, ps);
        float *Hf = tu_random(&st, n, -0.13, 0.13), *af = random_attention(&st, B, N),
              *zf = tu_random(&st, (size_t)B * h, -1, 1);
        double *xi = malloc(n * sizeof *xi);
        for (size_t i = 0; i < n; i++) xi[i] = test_rand_uniform(&st, -0.01, 0.01);
        keep_off_bounds(B, N, h, ps, Hf, af, zf, xi, eta, 1e-5);
        double *H = tu_to_double(Hf, n), *a = tu_to_double(af, (size_t)B * N), *z = tu_to_double(zf, (size_t)B * h);
        double *w = malloc(n * sizeof *w), *hn = malloc(n * sizeof *hn);
        for (size_t i = 0; i < n; i++) w[i] = test_rand_uniform(&st, -1, 1);
        double *dH = malloc(n * sizeof *dH), *da = malloc(B * N * sizeof *da), *dz = malloc(B * h * sizeof *dz);
        ref_hebbian_trace_backward(B, N, h, ps, H, a, z, xi, eta, CLIP, w, dH, da, dz);
        uint32_t clipped = 0;
        double *pre = malloc(n * sizeof *pre);
        ref_hebbian_trace_forward(B, N, h, ps, H, a, z, xi, eta, CLIP, hn, pre);
        for (size_t i = 0; i < n; i++) clipped += fabs(pre[i]) > CLIP;
        cr_assert(clipped > 0 && clipped < n, "the clip must be active for some entries, not all (%u of %zu)", clipped, n);
        double worst = 0, scale = 1e-3;
        double *xs[3] = {H, a, z}, *gs[3] = {dH, da, dz};
        size_t ns[3] = {n, (size_t)B * N, (size_t)B * h};
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < ns[k]; i++) {
                double keep = xs[k][i], eps = 1e-7, lp = 0, lm = 0;
                xs[k][i] = keep + eps;
                ref_hebbian_trace_forward(B, N, h, ps, H, a, z, xi, eta, CLIP, hn, NULL);
                for (size_t e = 0; e < n; e++) lp += w[e] * hn[e];
                xs[k][i] = keep - eps;
                ref_hebbian_trace_forward(B, N, h, ps, H, a, z, xi, eta, CLIP, hn, NULL);
                for (size_t e = 0; e < n; e++) lm += w[e] * hn[e];
                xs[k][i] = keep;
                worst = fmax(worst, fabs((lp - lm) / (2 * eps) - gs[k][i]));
                scale = fmax(scale, fabs(gs[k][i]));
            }
        cr_assert_lt(worst / scale, 1e-7, "per_sample=%d: finite-difference error %g (scale %g)", ps, worst, scale);
        free(Hf), free(af), free(zf), free(xi), free(H), free(a), free(z), free(w), free(hn), free(dH), free(da),
            free(dz), free(pre);
    }
}

typedef struct errors {
    double H_new, dH, da, dz;
    uint32_t clipped;
} errors;

static errors run_case(enn_context *ctx, enn_recorder *rec, uint64_t *st, uint32_t B, uint32_t N, uint32_t h, int ps,
                       enn_noise_mode noise, float eta, int accumulate)
{
    enn_memory_shape s = {B, N, h, ps};
    size_t n = trace_elems(B, N, h, ps), na = (size_t)B * N, nz = (size_t)B * h;
    float *H = tu_random(st, n, -0.12, 0.12), *a = random_attention(st, B, N), *z = tu_random(st, nz, -1, 1);
    float *dHn = tu_random(st, n, -1, 1), *xi = tu_random(st, n, -0.01, 0.01);
    float *dH0 = tu_random(st, n, -1, 1), *da0 = tu_random(st, na, -1, 1), *dz0 = tu_random(st, nz, -1, 1);
    enn_hebbian_params p = {.eta = eta, .clip = (float)CLIP,
                            .noise = {.mode = noise, .sigma = 0.004f, .seed = 1234, .stream = 17 + B}};
    /* The reference's noise: the host's Philox floats (bit-identical to the device's),
     * the buffer, or none. */
    double *xid = NULL;
    if (noise != ENN_NOISE_OFF) {
        xid = malloc(n * sizeof *xid);
        for (size_t i = 0; i < n; i++)
            xid[i] = noise == ENN_NOISE_BUFFER ? xi[i] : p.noise.sigma * enn_philox_normal(1234, 17 + B, (uint32_t)i);
    }
    keep_off_bounds(B, N, h, ps, H, a, z, xid, eta, 1e-6);
    enn_buffer *bH = tu_buffer(ctx, H, n), *bHn = tu_buffer(ctx, NULL, n), *ba = tu_buffer(ctx, a, na),
               *bz = tu_buffer(ctx, z, nz), *bxi = tu_buffer(ctx, xi, n), *bdHn = tu_buffer(ctx, dHn, n),
               *bdH = tu_buffer(ctx, dH0, n), *bda = tu_buffer(ctx, da0, na), *bdz = tu_buffer(ctx, dz0, nz),
               *ws = NULL;
    ENN_ASSERT_OK(enn_buffer_create(ctx, enn_hebbian_trace_workspace_bytes(s), &ws));
    p.noise.xi = enn_view_of(bxi);
    float beta = accumulate ? 1.0f : 0.0f;
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_hebbian_trace_forward(rec, s, enn_view_of(bHn), enn_view_of(bH), enn_view_of(ba),
                                            enn_view_of(bz), &p));
    ENN_ASSERT_OK(enn_hebbian_trace_backward(rec, s, enn_view_of(bdH), enn_view_of(bda), enn_view_of(bdz),
                                             enn_view_of(ws), enn_view_of(bdHn), enn_view_of(bH), enn_view_of(ba),
                                             enn_view_of(bz), &p, beta, beta, beta));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *gHn = tu_download(ctx, bHn, n), *gdH = tu_download(ctx, bdH, n), *gda = tu_download(ctx, bda, na),
          *gdz = tu_download(ctx, bdz, nz);

    double *Hd = tu_to_double(H, n), *ad = tu_to_double(a, na), *zd = tu_to_double(z, nz), *dHnd = tu_to_double(dHn, n);
    double *rHn = malloc(n * sizeof *rHn), *pre = malloc(n * sizeof *pre), *rdH = malloc(n * sizeof *rdH),
           *rda = malloc(na * sizeof *rda), *rdz = malloc(nz * sizeof *rdz);
    ref_hebbian_trace_forward(B, N, h, ps, Hd, ad, zd, xid, eta, CLIP, rHn, pre);
    ref_hebbian_trace_backward(B, N, h, ps, Hd, ad, zd, xid, eta, CLIP, dHnd, rdH, rda, rdz);
    if (accumulate) {
        for (size_t i = 0; i < n; i++) rdH[i] += dH0[i];
        for (size_t i = 0; i < na; i++) rda[i] += da0[i];
        for (size_t i = 0; i < nz; i++) rdz[i] += dz0[i];
    }
    errors e = {tu_rel_error(gHn, rHn, n, 1e-30), tu_rel_error(gdH, rdH, n, 1e-30), tu_rel_error(gda, rda, na, 1e-30),
                tu_rel_error(gdz, rdz, nz, 1e-30), 0};
    for (size_t i = 0; i < n; i++) e.clipped += fabs(pre[i]) > CLIP;
    free(H), free(a), free(z), free(dHn), free(xi), free(dH0), free(da0), free(dz0), free(xid);
    free(gHn), free(gdH), free(gda), free(gdz), free(Hd), free(ad), free(zd), free(dHnd), free(rHn), free(pre);
    free(rdH), free(rda), free(rdz);
    enn_buffer *bufs[] = {bH, bHn, ba, bz, bxi, bdHn, bdH, bda, bdz, ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) enn_buffer_destroy(ctx, bufs[i]);
    return e;
}

/* Tolerances, relative to each tensor's largest value. H_new: one batch sum of B <= 128
 * products (fp32, ~sqrt(B) roundings of 6e-8) plus three roundings: 1e-5. Gradients: dH
 * is one rounding of the mask times dH_new; da and dz are sums of length h or N
 * (<= 130): 1e-5. (Measured errors stay below 1e-6.) The clip masks agree exactly,
 * since no unclipped value lies within 1e-6 of a bound (keep_off_bounds). */
#define TOL 1e-5

static void check(errors e, const char *what, uint32_t B, uint32_t N, uint32_t h, int ps, int noise)
{
    cr_log_info("%s B=%u N=%u h=%u per_sample=%d noise=%d: errors H_new %.2g dH %.2g da %.2g dz %.2g, %u clipped",
                what, B, N, h, ps, noise, e.H_new, e.dH, e.da, e.dz, e.clipped);
    cr_assert_lt(e.H_new, TOL, "%s B=%u N=%u h=%u ps=%d noise=%d: H_new error %g", what, B, N, h, ps, noise, e.H_new);
    cr_assert_lt(e.dH, TOL, "%s B=%u N=%u h=%u ps=%d noise=%d: dH error %g", what, B, N, h, ps, noise, e.dH);
    cr_assert_lt(e.da, TOL, "%s B=%u N=%u h=%u ps=%d noise=%d: da error %g", what, B, N, h, ps, noise, e.da);
    cr_assert_lt(e.dz, TOL, "%s B=%u N=%u h=%u ps=%d noise=%d: dz error %g", what, B, N, h, ps, noise, e.dz);
}

Test(hebbian_trace, device_random_shapes)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 91;
    uint32_t clipped = 0;
    for (int k = 0; k < 12; k++) {
        uint32_t B = tu_pick_dim(&st, 40), N = tu_pick_dim(&st, 70), h = tu_pick_dim(&st, 130);
        int ps = k & 1, noise = k % 3, acc = (k / 2) % 2;
        float eta = k % 4 == 0 ? 0.3f : 0.05f;
        errors e = run_case(ctx, rec, &st, B, N, h, ps, (enn_noise_mode)noise, eta, acc);
        check(e, "random", B, N, h, ps, noise);
        clipped += e.clipped;
    }
    cr_assert_gt(clipped, 100, "the clip must be exercised (%u clipped entries)", clipped);
    check(run_case(ctx, rec, &st, 1, 1, 1, 0, ENN_NOISE_PHILOX, 0.05f, 0), "unit", 1, 1, 1, 0, 1);
    check(run_case(ctx, rec, &st, 1, 1, 1, 1, ENN_NOISE_BUFFER, 0.05f, 1), "unit", 1, 1, 1, 1, 2);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(hebbian_trace, device_paper_shape)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 92;
    check(run_case(ctx, rec, &st, 128, 64, 128, 0, ENN_NOISE_PHILOX, 0.05f, 0), "paper", 128, 64, 128, 0, 1);
    check(run_case(ctx, rec, &st, 128, 64, 128, 1, ENN_NOISE_PHILOX, 0.05f, 1), "paper", 128, 64, 128, 1, 1);
    /* Shared trace, whole vec4 rows (CPU devices: the tiles), partial tiles of slots and
     * vectors, every noise mode. */
    for (int noise = 0; noise < 3; noise++)
        check(run_case(ctx, rec, &st, 9, 13, 44, 0, (enn_noise_mode)noise, 0.05f, noise == 1), "vec4 tiles", 9, 13, 44,
              0, noise);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* With H = 0, a = 0 and eta = 1 the new trace is exactly clip(xi): the device's noise is
 * the host's Philox bit for bit, repeats with one seed, changes with another seed and
 * with another step, and has mean 0 and standard deviation sigma. */
Test(hebbian_trace, noise_stream)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const uint32_t B = 2, N = 64, h = 128;
    enn_memory_shape s = {B, N, h, 1};
    const size_t n = (size_t)B * N * h;
    const float sigma = 0.01f; /* 10 sigma inside the clip: no sample is clipped in practice */
    enn_buffer *H = tu_buffer(ctx, NULL, n), *a = tu_buffer(ctx, NULL, (size_t)B * N), *z = tu_buffer(ctx, NULL, B * h);
    enn_buffer *out[4];
    uint64_t seeds[4] = {7, 7, 8, 7}, steps[4] = {3, 3, 3, 4};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (int k = 0; k < 4; k++) {
        out[k] = tu_buffer(ctx, NULL, n);
        enn_hebbian_params p = {.eta = 1.0f, .clip = 0.1f,
                                .noise = {.mode = ENN_NOISE_PHILOX, .sigma = sigma, .seed = seeds[k], .stream = steps[k]}};
        ENN_ASSERT_OK(enn_hebbian_trace_forward(rec, s, enn_view_of(out[k]), enn_view_of(H), enn_view_of(a),
                                                enn_view_of(z), &p));
    }
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *x[4];
    for (int k = 0; k < 4; k++) x[k] = tu_download(ctx, out[k], n);
    cr_assert(!memcmp(x[0], x[1], n * sizeof(float)), "one seed and step gave two different streams");
    uint32_t same_seed = 0, same_step = 0;
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) {
        float want = sigma * enn_philox_normal(7, 3, (uint32_t)i);
        cr_assert(!memcmp(&want, &x[0][i], 4), "element %zu: device %.9g, host %.9g", i, x[0][i], want);
        same_seed += x[0][i] == x[2][i];
        same_step += x[0][i] == x[3][i];
        sum += x[0][i];
        sum2 += (double)x[0][i] * x[0][i];
    }
    cr_assert_lt(same_seed, 8, "%u equal values under another seed", same_seed);
    cr_assert_lt(same_step, 8, "%u equal values at another step", same_step);
    /* n = 16384 samples: standard errors sigma/128 for the mean and sigma^2 sqrt(2/n) =
     * 0.011 sigma^2 for the variance; bounds of 5 standard errors. */
    double mean = sum / n, var = sum2 / n - mean * mean;
    cr_assert_lt(fabs(mean), 5 * sigma / sqrt((double)n), "noise mean %g", mean);
    cr_assert_lt(fabs(var / (sigma * (double)sigma) - 1), 5 * sqrt(2.0 / n), "noise variance %g", var);
    for (int k = 0; k < 4; k++) free(x[k]), enn_buffer_destroy(ctx, out[k]);
    enn_buffer_destroy(ctx, H), enn_buffer_destroy(ctx, a), enn_buffer_destroy(ctx, z);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(hebbian_trace, rejects_bad_arguments)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *b = tu_buffer(ctx, NULL, 64);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    enn_memory_shape s = {2, 2, 4, 0};
    enn_view v = enn_view_of(b);
    enn_hebbian_params p = {.eta = 0.05f, .clip = 0.1f};
    cr_assert_eq(enn_hebbian_trace_forward(rec, s, v, v, v, v, &p), ENN_ERROR_INVALID_ARGUMENT); /* H_new = H */
    p.eta = 1.5f;
    cr_assert_eq(enn_hebbian_trace_forward(rec, s, enn_view_at(b, 256), v, v, v, &p), ENN_ERROR_INVALID_ARGUMENT);
    p.eta = 0.05f;
    p.noise.mode = ENN_NOISE_BUFFER; /* no buffer given */
    cr_assert_eq(enn_hebbian_trace_forward(rec, s, enn_view_at(b, 256), v, v, v, &p), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, b);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* backward_inputs lays work out per device type (8 rows per workgroup on CPU devices,
 * one on GPUs); lavapipe is a CPU device, so posing as a GPU tests the GPU layout here.
 * Widths of whole vec4s and not. */
Test(hebbian_trace, device_gpu_layout)
{
    enn_context *ctx = test_context();
    enn_device_type real = ctx->caps.device_type;
    ctx->caps.device_type = ENN_DEVICE_DISCRETE_GPU;
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t st = 92;
    for (int k = 0; k < 6; k++) {
        uint32_t B = tu_pick_dim(&st, 20), N = tu_pick_dim(&st, 40), h = tu_pick_dim(&st, 30) * 4 - (k >= 4);
        int ps = k & 1, noise = k % 3;
        check(run_case(ctx, rec, &st, B, N, h, ps, (enn_noise_mode)noise, 0.05f, k == 2), "gpu layout", B, N, h, ps,
              noise);
    }
    enn_recorder_destroy(rec);
    ctx->caps.device_type = real;
    test_context_finish(ctx);
}
