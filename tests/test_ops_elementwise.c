/* Elementwise ops, activations and concat/split against the double references in
 * tests/common/ref_elementwise.c; backward kernels also against finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/recorder.h"
#include "device_data.h"
#include "harness.h"
#include "ops/elementwise.h"
#include "ref_elementwise.h"
#include "ref_gradcheck.h"

/* Sizes: 1, primes, non-multiples of the 256-wide workgroup, the paper's B*h = 128*128
 * and B*T*d = 128*28*28. */
static const uint32_t sizes[] = {1, 7, 255, 257, 1031, 128 * 128, 128 * 28 * 28};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Tolerances. One activation is a handful of correctly rounded operations plus exp,
 * which Vulkan allows 3 + 2|x| ulp (x = -2|v| in tanh, -|v| in sigmoid): for |v| <= 6
 * that is <= 27 ulp = 1.6e-6 relative; 1e-5 keeps a margin. The floor 1e-30 keeps
 * relu's exact zeros exact. Linear ops are one or two roundings: 1e-6. */
#define TOL_ACT 1e-5
#define TOL_LINEAR 1e-6

static void run_activation(enn_context *ctx, enn_recorder *rec, int act, uint32_t n, uint64_t *seed)
{
    float *x = malloc(n * 4ull), *y = malloc(n * 4ull), *dy = malloc(n * 4ull), *dx = malloc(n * 4ull);
    double *xd = malloc(n * 8ull), *yd = malloc(n * 8ull), *dyd = malloc(n * 8ull), *dxd = malloc(n * 8ull);
    dd_fill_uniform(seed, x, xd, n, -6, 6);
    /* A few values near zero, where tanh's formula switches and cancellation would show. */
    for (uint32_t i = 0; i < n; i += 5) { x[i] *= 1e-3f; xd[i] = x[i]; }
    dd_fill_uniform(seed, dy, dyd, n, -1, 1);
    dd_fill_uniform(seed, dx, dxd, n, -1, 1);
    double *scale = malloc(n * 8ull);
    enn_buffer *bx = dd_upload(ctx, x, n * 4ull), *by = dd_upload(ctx, NULL, n * 4ull);
    enn_buffer *bdy = dd_upload(ctx, dy, n * 4ull), *bdx = dd_upload(ctx, dx, n * 4ull);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_activation_forward(rec, act, n, enn_view_of(bx), enn_view_of(by)));
    /* backward with beta = 0.5 so the accumulation is checked too */
    ENN_ASSERT_OK(enn_activation_backward(rec, act, n, enn_view_of(by), enn_view_of(bdy), 0.5f, enn_view_of(bdx)));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, by, 0, y, n * 4ull);
    dd_download(ctx, bdx, 0, dx, n * 4ull);

    ref_activation_forward(act, n, xd, yd);
    size_t w;
    double e = dd_max_rel_error(y, yd, n, 1e-30, &w);
    cr_expect(e <= TOL_ACT, "act %d n %u forward: rel error %g at %zu (x %g, got %g, want %g)", act, n, e, w, xd[w],
              y[w], yd[w]);
    /* The backward's reference takes the device's y, so only the backward's error is measured. */
    double *ydev = malloc(n * 8ull);
    for (uint32_t i = 0; i < n; i++) ydev[i] = y[i];
    /* dx = dy f' + 0.5 dx may cancel: the error is measured against |dy f'| + |0.5 dx|. */
    for (uint32_t i = 0; i < n; i++)
        scale[i] = fabs(dyd[i] * ref_activation_derivative_from_output(act, ydev[i])) + fabs(0.5 * dxd[i]) + 1e-30;
    ref_activation_backward(act, n, ydev, dyd, 0.5, dxd);
    e = dd_max_scaled_error(dx, dxd, scale, n, &w);
    cr_expect(e <= TOL_ACT, "act %d n %u backward: rel error %g at %zu", act, n, e, w);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, by);
    enn_buffer_destroy(ctx, bdy);
    enn_buffer_destroy(ctx, bdx);
    free(x), free(y), free(dy), free(dx), free(xd), free(yd), free(dyd), free(dxd), free(ydev), free(scale);
}

Test(ops_elementwise, activations_match_reference)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 1;
    for (int act = 0; act <= 3; act++) {
        for (size_t s = 0; s < NSIZES; s++) run_activation(ctx, rec, act, sizes[s], &seed);
        for (int k = 0; k < 3; k++) run_activation(ctx, rec, act, 1 + (uint32_t)(test_rand_u64(&seed) % 5000), &seed);
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

static void act_forward_fn(void *user, const double *x, double *y) { ref_activation_forward(*(int *)user, 64, x, y); }

/* The reference backward is the derivative of the reference forward. Central
 * differences in double with step 1e-5: truncation ~1e-10, rounding of the loss (~1e-14)
 * over 2h ~5e-10, against a floor of 1e-3: 1e-6. */
Test(ops_elementwise, reference_backward_matches_finite_differences)
{
    uint64_t seed = 2;
    double x[64], y[64], w[64], fd[64], an[64] = {0};
    for (int act = 0; act <= 3; act++) {
        dd_fill_uniform(&seed, NULL, x, 64, -3, 3);
        for (int i = 0; i < 64; i++)
            if (fabs(x[i]) < 1e-3) x[i] = 0.5; /* relu's kink */
        dd_fill_uniform(&seed, NULL, w, 64, -1, 1);
        ref_activation_forward(act, 64, x, y);
        ref_activation_backward(act, 64, y, w, 0.0, an);
        ref_fd_gradient(act_forward_fn, &act, x, 64, 64, w, 1e-5, fd);
        size_t at;
        double e = dd_max_rel_error_d(an, fd, 64, 1e-3, &at);
        cr_expect(e <= 1e-6, "act %d: analytic %g vs finite difference %g at %zu", act, an[at], fd[at], at);
    }
}

/* The device's backward against finite differences of the reference forward: a check
 * that does not share the formula of the reference backward. Step 1e-4 in double on
 * |x| <= 3: truncation ~1e-8; the device adds fp32 rounding, so 1e-5. The derivative is
 * computed from the stored fp32 output y, whose rounding (2^-24 relative) moves 1 - y^2
 * or y (1 - y) by ~1e-7 absolute: near saturation that is large relative to the
 * derivative itself (seen on NVIDIA: 1.7e-5 at y = 0.9985), so errors are measured
 * against max(|dx|, 0.1 |dy|), which allows 1e-6 |dy| absolute, 8x that rounding. */
Test(ops_elementwise, device_backward_matches_finite_differences)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 3;
    for (int act = 1; act <= 3; act++) {
        float x[64], y[64], dy[64], dx[64];
        double xd[64], wd[64], fd[64];
        dd_fill_uniform(&seed, x, xd, 64, -3, 3);
        for (int i = 0; i < 64; i++)
            if (fabs(xd[i]) < 1e-2) x[i] = 0.5f, xd[i] = 0.5;
        dd_fill_uniform(&seed, dy, wd, 64, -1, 1);
        enn_buffer *bx = dd_upload(ctx, x, 256), *bdy = dd_upload(ctx, dy, 256), *bdx = dd_upload(ctx, NULL, 256);
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        /* in place: y overwrites x */
        ENN_ASSERT_OK(enn_activation_forward(rec, act, 64, enn_view_of(bx), enn_view_of(bx)));
        ENN_ASSERT_OK(enn_activation_backward(rec, act, 64, enn_view_of(bx), enn_view_of(bdy), 0.0f, enn_view_of(bdx)));
        ENN_ASSERT_OK(enn_recorder_run(rec));
        dd_download(ctx, bdx, 0, dx, 256);
        dd_download(ctx, bx, 0, y, 256);
        ref_fd_gradient(act_forward_fn, &act, xd, 64, 64, wd, 1e-4, fd);
        double scale[64];
        for (int i = 0; i < 64; i++) scale[i] = fmax(fabs(fd[i]), 0.1 * fabs(wd[i])) + 1e-30;
        size_t at;
        double e = dd_max_scaled_error(dx, fd, scale, 64, &at);
        cr_expect(e <= 1e-5, "act %d: device %g vs finite difference %g at %zu", act, dx[at], fd[at], at);
        enn_buffer_destroy(ctx, bx);
        enn_buffer_destroy(ctx, bdy);
        enn_buffer_destroy(ctx, bdx);
        (void)y;
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(ops_elementwise, axpby_add_mul_scale)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 4;
    for (size_t s = 0; s < NSIZES; s++) {
        uint32_t n = sizes[s];
        float *a = malloc(n * 4ull), *b = malloc(n * 4ull), *y = malloc(n * 4ull);
        double *ad = malloc(n * 8ull), *bd = malloc(n * 8ull), *r = malloc(n * 8ull);
        dd_fill_uniform(&seed, a, ad, n, -2, 2);
        dd_fill_uniform(&seed, b, bd, n, -2, 2);
        enn_buffer *ba = dd_upload(ctx, a, n * 4ull), *bb = dd_upload(ctx, b, n * 4ull);
        enn_buffer *sum = dd_upload(ctx, NULL, n * 4ull), *prod = dd_upload(ctx, NULL, n * 4ull);
        enn_buffer *sc = dd_upload(ctx, NULL, n * 4ull);
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        ENN_ASSERT_OK(enn_add(rec, n, enn_view_of(ba), enn_view_of(bb), enn_view_of(sum)));
        ENN_ASSERT_OK(enn_mul(rec, n, enn_view_of(ba), enn_view_of(bb), enn_view_of(prod)));
        ENN_ASSERT_OK(enn_scale(rec, n, -0.75f, enn_view_of(ba), enn_view_of(sc)));
        ENN_ASSERT_OK(enn_axpby(rec, n, 0.5f, enn_view_of(ba), 2.0f, enn_view_of(bb))); /* b = 0.5 a + 2 b */
        ENN_ASSERT_OK(enn_recorder_run(rec));
        struct { enn_buffer *buf; const char *name; } outs[4] = {{sum, "add"}, {prod, "mul"}, {sc, "scale"}, {bb, "axpby"}};
        for (int o = 0; o < 4; o++) {
            for (uint32_t i = 0; i < n; i++)
                r[i] = o == 0 ? ad[i] + bd[i] : o == 1 ? ad[i] * bd[i] : o == 2 ? -0.75 * ad[i] : 0.5 * ad[i] + 2 * bd[i];
            dd_download(ctx, outs[o].buf, 0, y, n * 4ull);
            size_t w;
            /* add and axpby can cancel: measure against the operands' size (floor 1). */
            double e = dd_max_rel_error(y, r, n, o == 1 || o == 2 ? 1e-30 : 1.0, &w);
            cr_expect(e <= TOL_LINEAR, "%s n %u: rel error %g at %zu", outs[o].name, n, e, w);
        }
        enn_buffer_destroy(ctx, ba), enn_buffer_destroy(ctx, bb), enn_buffer_destroy(ctx, sum);
        enn_buffer_destroy(ctx, prod), enn_buffer_destroy(ctx, sc);
        free(a), free(b), free(y), free(ad), free(bd), free(r);
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* Concat of parts [rows, cols_i] along the feature axis, and its backward (the split),
 * which accumulates with beta. Copies are exact; the accumulation is one rounding. */
static void run_concat(enn_context *ctx, enn_recorder *rec, uint32_t rows, uint32_t parts, const uint32_t *cols,
                       uint64_t *seed)
{
    uint32_t total = 0;
    for (uint32_t p = 0; p < parts; p++) total += cols[p];
    size_t n = (size_t)rows * total;
    float *in[4], *din[4], *out = malloc(n * 4), *dout = malloc(n * 4);
    double *ind[4], *dind[4], *outd = malloc(n * 8), *doutd = malloc(n * 8);
    enn_buffer *bin[4], *bdin[4];
    enn_view vin[4], vdin[4];
    for (uint32_t p = 0; p < parts; p++) {
        size_t m = (size_t)rows * cols[p];
        in[p] = malloc(m * 4), din[p] = malloc(m * 4), ind[p] = malloc(m * 8), dind[p] = malloc(m * 8);
        dd_fill_uniform(seed, in[p], ind[p], m, -1, 1);
        dd_fill_uniform(seed, din[p], dind[p], m, -1, 1);
        bin[p] = dd_upload(ctx, in[p], m * 4), bdin[p] = dd_upload(ctx, din[p], m * 4);
        vin[p] = enn_view_of(bin[p]), vdin[p] = enn_view_of(bdin[p]);
    }
    dd_fill_uniform(seed, dout, doutd, n, -1, 1);
    enn_buffer *bout = dd_upload(ctx, NULL, n * 4), *bdout = dd_upload(ctx, dout, n * 4);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_concat_forward(rec, rows, parts, cols, vin, enn_view_of(bout)));
    ENN_ASSERT_OK(enn_concat_backward(rec, rows, parts, cols, enn_view_of(bdout), 1.0f, vdin));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    ref_concat_forward(rows, parts, cols, (const double *const *)ind, outd);
    ref_concat_backward(rows, parts, cols, doutd, 1.0, dind);
    dd_download(ctx, bout, 0, out, n * 4);
    size_t w;
    cr_expect(dd_max_rel_error(out, outd, n, 1e-30, &w) == 0, "concat rows %u: differs at %zu", rows, w);
    for (uint32_t p = 0; p < parts; p++) {
        size_t m = (size_t)rows * cols[p];
        dd_download(ctx, bdin[p], 0, din[p], m * 4);
        double e = dd_max_rel_error(din[p], dind[p], m, 1.0, &w);
        cr_expect(e <= TOL_LINEAR, "split rows %u part %u: error %g at %zu", rows, p, e, w);
        enn_buffer_destroy(ctx, bin[p]), enn_buffer_destroy(ctx, bdin[p]);
        free(in[p]), free(din[p]), free(ind[p]), free(dind[p]);
    }
    enn_buffer_destroy(ctx, bout), enn_buffer_destroy(ctx, bdout);
    free(out), free(dout), free(outd), free(doutd);
}

Test(ops_elementwise, concat_and_split)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 5;
    const uint32_t one[1] = {1}, odd[2] = {7, 13}, enn[3] = {128, 128, 128}, mixed[3] = {28, 1, 257};
    const uint32_t rows[] = {1, 3, 128};
    for (int k = 0; k < 3; k++) { /* random shapes */
        uint32_t cols[3];
        for (int p = 0; p < 3; p++) cols[p] = 1 + (uint32_t)(test_rand_u64(&seed) % 300);
        run_concat(ctx, rec, 1 + (uint32_t)(test_rand_u64(&seed) % 200), 3, cols, &seed);
    }
    for (size_t r = 0; r < 3; r++) {
        run_concat(ctx, rec, rows[r], 1, one, &seed);
        run_concat(ctx, rec, rows[r], 2, odd, &seed);
        run_concat(ctx, rec, rows[r], 3, enn, &seed);
        run_concat(ctx, rec, rows[r], 3, mixed, &seed);
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

typedef struct concat_fd { uint32_t rows, parts; const uint32_t *cols; } concat_fd;

static void concat_fn(void *user, const double *x, double *y)
{
    concat_fd *c = user;
    const double *in[4];
    size_t at = 0;
    for (uint32_t p = 0; p < c->parts; p++) in[p] = x + at, at += (size_t)c->rows * c->cols[p];
    ref_concat_forward(c->rows, c->parts, c->cols, in, y);
}

/* The split is concat's gradient: finite differences of the reference concat (linear,
 * so only rounding: ~1e-15 over 2h = 2e-5, against a floor of 1e-3: 1e-7). */
Test(ops_elementwise, split_is_the_gradient_of_concat)
{
    const uint32_t cols[3] = {3, 1, 5};
    concat_fd c = {4, 3, cols};
    double x[36], w[36], fd[36], an[36] = {0};
    uint64_t seed = 6;
    dd_fill_uniform(&seed, NULL, x, 36, -1, 1);
    dd_fill_uniform(&seed, NULL, w, 36, -1, 1);
    ref_fd_gradient(concat_fn, &c, x, 36, 36, w, 1e-5, fd);
    double *din[3] = {an, an + 12, an + 16};
    ref_concat_backward(4, 3, cols, w, 0.0, din);
    size_t at;
    double e = dd_max_rel_error_d(an, fd, 36, 1e-3, &at);
    cr_expect(e <= 1e-7, "split vs finite differences: %g at %zu", e, at);
}

Test(ops_elementwise, rejects_bad_shapes)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *b = dd_upload(ctx, NULL, 64);
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    cr_expect_eq(enn_add(rec, 17, enn_view_of(b), enn_view_of(b), enn_view_of(b)), ENN_ERROR_OUT_OF_RANGE);
    cr_expect_eq(enn_axpby(rec, 4, 1, enn_view_at(b, 4), 0, enn_view_of(b)), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(enn_copy_columns(rec, 2, 3, enn_view_of(b), 2, 0, 1, enn_view_of(b), 3, 0, 0), ENN_ERROR_SHAPE);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, b);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
