/* Softmax cross-entropy (forward, statistics, backward) against the double reference in
 * tests/common/ref_softmax_cross_entropy.c, and the backward against finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/recorder.h"
#include "device_data.h"
#include "harness.h"
#include "ops/softmax_cross_entropy.h"
#include "ref_gradcheck.h"
#include "ref_softmax_cross_entropy.h"

/* Tolerances.
 * Loss: (max - x[label]) + log(sum): the difference is exact, log(sum) carries the
 * relative error of the fp32 sum of exponentials, at most ~V/256 + log2(256) additions
 * per term (a strided pass then a tree): for V = 200,003 that is ~800 additions, whose
 * typical error (random signs of rounding) is sqrt(800) * 6e-8 = 2e-6. Loss relative
 * error 1e-5 (floor 1e-3 for tiny losses).
 * Gradient: exp(x - lse) carries the absolute error of x - lse, about ulp(|lse|) plus
 * the sum's error: 6e-8 * 112 (rows shifted by +100) + 2e-6 = 9e-6, relative to each
 * term; 3e-5 against |p| + [v == label]. */
#define TOL_LOSS 1e-5
#define TOL_GRAD 3e-5

typedef struct xent_case {
    uint32_t rows, classes, ignore, max_rows;
    int in_place, shifted, invalid;
    int bias; /* also the bias gradient, added to random values already in dbias */
} xent_case;

static void run_case(enn_context *ctx, enn_recorder *rec, const xent_case *c, uint64_t *seed)
{
    uint32_t R = c->rows, V = c->classes;
    size_t n = (size_t)R * V;
    float *logits = malloc(n * 4), *grad = malloc(n * 4);
    double *logitsd = malloc(n * 8), *gradd = malloc(n * 8), *lossd = malloc(R * 8ull);
    uint32_t *labels = malloc(R * 4ull), *pred = malloc(R * 4ull), *predd = malloc(R * 4ull);
    float *loss = malloc(R * 4ull);
    dd_fill_uniform(seed, logits, logitsd, n, -4, 4);
    for (uint32_t r = 0; r < R; r++) {
        labels[r] = (uint32_t)(test_rand_u64(seed) % V);
        if (c->ignore != ENN_NO_IGNORE && r % 4 == 1) labels[r] = c->ignore;
        if (c->invalid && r % 9 == 4) labels[r] = V + 3;
        /* Rows shifted by +100: exp would overflow fp32 without the max subtraction. */
        if (c->shifted && r % 3 == 0)
            for (uint32_t v = 0; v < V; v++) logits[(size_t)r * V + v] += 100.0f, logitsd[(size_t)r * V + v] = logits[(size_t)r * V + v];
    }
    /* A tie for the maximum: the lowest index wins. */
    if (V >= 10 && R >= 3) {
        float top = 50.0f;
        logits[2 * (size_t)V + 3] = logits[2 * (size_t)V + 9] = top;
        logitsd[2 * (size_t)V + 3] = logitsd[2 * (size_t)V + 9] = top;
        /* and ties inside one vec4 (5, 6) and in neighbouring ones (2, 4), which the CPU
         * rows kernel takes in one step */
        logits[(size_t)V + 2] = logits[(size_t)V + 4] = logitsd[(size_t)V + 2] = logitsd[(size_t)V + 4] = top;
        if (R >= 5) {
            size_t r4 = 4 * (size_t)V;
            logits[r4 + 5] = logits[r4 + 6] = logitsd[r4 + 5] = logitsd[r4 + 6] = top;
        }
    }
    enn_buffer *bl = dd_upload(ctx, logits, n * 4), *blab = dd_upload(ctx, labels, R * 4ull);
    enn_buffer *bloss = dd_upload(ctx, NULL, R * 4ull), *blse = dd_upload(ctx, NULL, R * 4ull);
    enn_buffer *bpred = dd_upload(ctx, NULL, R * 4ull), *bstats = dd_upload(ctx, NULL, sizeof(enn_xent_stats));
    enn_buffer *bgrad = c->in_place ? bl : dd_upload(ctx, NULL, n * 4);
    float *dbias = malloc(V * 4ull), *dbias0 = malloc(V * 4ull);
    dd_fill_uniform(seed, dbias0, NULL, V, -1, 1);
    enn_buffer *bbias = c->bias ? dd_upload(ctx, dbias0, V * 4ull) : NULL;
    enn_xent_shape shape = {R, V, c->ignore, c->max_rows};
    const float scale = 1.5f;
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_softmax_cross_entropy_forward(rec, &shape, enn_view_of(bl), enn_view_of(blab), enn_view_of(bloss),
                                                    enn_view_of(blse), enn_view_of(bpred), enn_view_of(bstats)));
    ENN_ASSERT_OK(enn_softmax_cross_entropy_backward(rec, &shape, enn_view_of(bl), enn_view_of(blab), enn_view_of(blse),
                                                     enn_view_of(bstats), scale, enn_view_of(bgrad),
                                                     c->bias ? enn_view_of(bbias) : (enn_view){0}));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    if (c->bias) dd_download(ctx, bbias, 0, dbias, V * 4ull);
    enn_xent_stats st;
    dd_download(ctx, bstats, 0, &st, sizeof st);
    dd_download(ctx, bloss, 0, loss, R * 4ull);
    dd_download(ctx, bpred, 0, pred, R * 4ull);
    dd_download(ctx, bgrad, 0, grad, n * 4);

    ref_xent_result ref = ref_softmax_cross_entropy_forward(R, V, c->ignore, logitsd, labels, lossd, predd);
    ref_softmax_cross_entropy_backward(R, V, c->ignore, logitsd, labels, scale, gradd);
    cr_expect_eq(st.count, ref.count, "R %u V %u: count %u, want %u", R, V, st.count, ref.count);
    cr_expect_eq(st.correct, ref.correct, "R %u V %u: correct %u, want %u", R, V, st.correct, ref.correct);
    cr_expect_eq(st.invalid, ref.invalid, "R %u V %u: invalid %u, want %u", R, V, st.invalid, ref.invalid);
    cr_expect(fabs(st.mean_loss - ref.mean_loss) <= TOL_LOSS * fmax(fabs(ref.mean_loss), 1e-3),
              "R %u V %u: mean loss %.8g, want %.8g", R, V, st.mean_loss, ref.mean_loss);
    cr_expect(fabs(st.sum_loss - ref.sum_loss) <= TOL_LOSS * fmax(fabs(ref.sum_loss), 1e-3),
              "R %u V %u: sum loss %.8g, want %.8g", R, V, st.sum_loss, ref.sum_loss);
    size_t w;
    double e = dd_max_rel_error(loss, lossd, R, 1e-3, &w);
    cr_expect(e <= TOL_LOSS, "R %u V %u: row loss error %g at row %zu (%g vs %g)", R, V, e, w, loss[w], lossd[w]);
    for (uint32_t r = 0; r < R; r++)
        cr_expect_eq(pred[r], predd[r], "R %u V %u: argmax of row %u is %u, want %u", R, V, r, pred[r], predd[r]);
    if (V >= 10 && R >= 3) {
        cr_expect_eq(pred[2], 3u, "tie: argmax %u, want the lower index 3", pred[2]);
        cr_expect_eq(pred[1], 2u, "tie: argmax %u, want the lower index 2", pred[1]);
        if (R >= 5) cr_expect_eq(pred[4], 5u, "tie: argmax %u, want the lower index 5", pred[4]);
    }
    /* Gradient error against the size of its terms: scale/count * (p + [v == label]). */
    double *mag = malloc(n * 8);
    for (uint32_t r = 0; r < R; r++)
        for (uint32_t v = 0; v < V; v++) {
            size_t i = (size_t)r * V + v;
            mag[i] = fabs(gradd[i]) + (v == labels[r] && ref.count ? scale / ref.count : 0) + 1e-30;
        }
    e = dd_max_scaled_error(grad, gradd, mag, n, &w);
    cr_expect(e <= TOL_GRAD, "R %u V %u: gradient error %g at %zu (%g vs %g)", R, V, e, w, grad[w], gradd[w]);
    /* Bias gradient: the initial value plus the column sums of the reference gradient;
     * each term may carry TOL_GRAD of its size, and the fp32 sum rounds at most R times. */
    for (uint32_t v = 0; c->bias && v < V; v++) {
        double want = dbias0[v], size = fabs(dbias0[v]);
        for (uint32_t r = 0; r < R; r++) want += gradd[(size_t)r * V + v], size += mag[(size_t)r * V + v];
        double tol = (TOL_GRAD + R * 6e-8) * size + 1e-30;
        if (!(fabs(dbias[v] - want) <= tol)) {
            cr_expect(0, "R %u V %u: bias gradient %u is %.8g, want %.8g (tolerance %g)", R, V, v, dbias[v], want, tol);
            break;
        }
    }

    enn_buffer_destroy(ctx, bl), enn_buffer_destroy(ctx, blab), enn_buffer_destroy(ctx, bloss);
    enn_buffer_destroy(ctx, blse), enn_buffer_destroy(ctx, bpred), enn_buffer_destroy(ctx, bstats);
    if (!c->in_place) enn_buffer_destroy(ctx, bgrad);
    if (bbias) enn_buffer_destroy(ctx, bbias);
    free(dbias), free(dbias0);
    free(logits), free(grad), free(logitsd), free(gradd), free(lossd), free(labels), free(pred), free(predd);
    free(loss), free(mag);
}

Test(ops_softmax_cross_entropy, matches_reference)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    uint64_t seed = 11;
    const xent_case cases[] = {
        {1, 1, ENN_NO_IGNORE, 0, 0, 0, 0, 0},
        {1, 2, ENN_NO_IGNORE, 0, 1, 0, 0, 1},
        {7, 13, 0, 0, 0, 0, 0, 1},
        {28, 257, ENN_NO_IGNORE, 5, 0, 1, 0, 1}, /* rows start unaligned; chunks of 5 rows */
        {128, 10, ENN_NO_IGNORE, 0, 0, 0, 0, 1}, /* MNIST: B = 128, 10 classes */
        {64, 1031, 0, 7, 1, 1, 1, 0},            /* in place, chunked, shifted, invalid labels */
        {3, 200003, 0, 0, 1, 1, 0, 0},           /* beyond the paper's vocabulary */
        {2, 188590, 0, 0, 0, 0, 0, 1},           /* the paper's WikiText vocabulary */
        /* V % 4 == 0: CPU devices take the bias gradient in the same pass, chunk by chunk */
        {64, 1024, 0, 7, 1, 1, 1, 1},
        {5, 12, ENN_NO_IGNORE, 0, 0, 0, 0, 1},
        {300, 1000, 0, 0, 0, 1, 0, 1},           /* more rows than a run of the flat kernel */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(ctx, rec, &cases[i], &seed);
    for (int k = 0; k < 4; k++) { /* random shapes, alternately chunked and in place */
        xent_case c = {1 + (uint32_t)(test_rand_u64(&seed) % 50), 1 + (uint32_t)(test_rand_u64(&seed) % 5000),
                       k % 2 ? 0u : ENN_NO_IGNORE, k % 2 ? 3u : 0u, k % 2, k / 2, k % 2, k < 2};
        run_case(ctx, rec, &c, &seed);
    }
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

typedef struct xent_fd {
    uint32_t rows, classes, ignore;
    const uint32_t *labels;
} xent_fd;

static void mean_loss_fn(void *user, const double *x, double *y)
{
    xent_fd *f = user;
    y[0] = ref_softmax_cross_entropy_forward(f->rows, f->classes, f->ignore, x, f->labels, NULL, NULL).mean_loss;
}

/* The reference gradient is the derivative of the reference mean loss (double, step
 * 1e-5: truncation ~1e-10, rounding ~1e-16 / 1e-5; floor 1e-3: 1e-6). */
Test(ops_softmax_cross_entropy, reference_backward_matches_finite_differences)
{
    const uint32_t R = 5, V = 7, labels[5] = {3, 0, 6, 0, 1};
    double x[35], fd[35], an[35], w = 1;
    uint64_t seed = 12;
    dd_fill_uniform(&seed, NULL, x, 35, -3, 3);
    xent_fd f = {R, V, 0, labels};
    ref_fd_gradient(mean_loss_fn, &f, x, 35, 1, &w, 1e-5, fd);
    ref_softmax_cross_entropy_backward(R, V, 0, x, labels, 1.0, an);
    size_t at;
    double e = dd_max_rel_error_d(an, fd, 35, 1e-3, &at);
    cr_expect(e <= 1e-6, "analytic %g vs finite difference %g at %zu", an[at], fd[at], at);
}

/* The device gradient against finite differences of the reference forward (fp32
 * gradient: 1e-5 relative, floor 1e-3 of the largest entry). */
Test(ops_softmax_cross_entropy, device_backward_matches_finite_differences)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const uint32_t R = 6, V = 11, labels[6] = {3, 0, 10, 0, 1, 7};
    float x[66], g[66];
    double xd[66], fd[66], w = 1;
    uint64_t seed = 13;
    dd_fill_uniform(&seed, x, xd, 66, -3, 3);
    enn_buffer *bl = dd_upload(ctx, x, sizeof x), *blab = dd_upload(ctx, labels, sizeof labels);
    enn_buffer *bloss = dd_upload(ctx, NULL, R * 4), *blse = dd_upload(ctx, NULL, R * 4);
    enn_buffer *bpred = dd_upload(ctx, NULL, R * 4), *bstats = dd_upload(ctx, NULL, sizeof(enn_xent_stats));
    enn_buffer *bg = dd_upload(ctx, NULL, sizeof g);
    enn_xent_shape shape = {R, V, 0, 0};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_softmax_cross_entropy_forward(rec, &shape, enn_view_of(bl), enn_view_of(blab), enn_view_of(bloss),
                                                    enn_view_of(blse), enn_view_of(bpred), enn_view_of(bstats)));
    ENN_ASSERT_OK(enn_softmax_cross_entropy_backward(rec, &shape, enn_view_of(bl), enn_view_of(blab), enn_view_of(blse),
                                                     enn_view_of(bstats), 1.0f, enn_view_of(bg), (enn_view){0}));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    dd_download(ctx, bg, 0, g, sizeof g);
    xent_fd f = {R, V, 0, labels};
    ref_fd_gradient(mean_loss_fn, &f, xd, 66, 1, &w, 1e-5, fd);
    double mx = 0;
    for (int i = 0; i < 66; i++) mx = fmax(mx, fabs(fd[i]));
    size_t at;
    double e = dd_max_rel_error(g, fd, 66, 1e-3 * mx, &at);
    cr_expect(e <= 1e-5, "device %g vs finite difference %g at %zu", g[at], fd[at], at);
    enn_buffer_destroy(ctx, bl), enn_buffer_destroy(ctx, blab), enn_buffer_destroy(ctx, bloss);
    enn_buffer_destroy(ctx, blse), enn_buffer_destroy(ctx, bpred), enn_buffer_destroy(ctx, bstats);
    enn_buffer_destroy(ctx, bg);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* With every row ignored the loss and gradient are 0 (no division by zero). */
Test(ops_softmax_cross_entropy, all_rows_ignored)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const uint32_t R = 3, V = 5, labels[3] = {0, 0, 0};
    float x[15], g[15];
    uint64_t seed = 14;
    dd_fill_uniform(&seed, x, NULL, 15, -3, 3);
    enn_buffer *bl = dd_upload(ctx, x, sizeof x), *blab = dd_upload(ctx, labels, sizeof labels);
    enn_buffer *bloss = dd_upload(ctx, NULL, R * 4), *blse = dd_upload(ctx, NULL, R * 4);
    enn_buffer *bpred = dd_upload(ctx, NULL, R * 4), *bstats = dd_upload(ctx, NULL, sizeof(enn_xent_stats));
    enn_xent_shape shape = {R, V, 0, 0};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_softmax_cross_entropy_forward(rec, &shape, enn_view_of(bl), enn_view_of(blab), enn_view_of(bloss),
                                                    enn_view_of(blse), enn_view_of(bpred), enn_view_of(bstats)));
    ENN_ASSERT_OK(enn_softmax_cross_entropy_backward(rec, &shape, enn_view_of(bl), enn_view_of(blab), enn_view_of(blse),
                                                     enn_view_of(bstats), 1.0f, enn_view_of(bl), (enn_view){0}));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_xent_stats st;
    dd_download(ctx, bstats, 0, &st, sizeof st);
    dd_download(ctx, bl, 0, g, sizeof g);
    cr_expect(st.count == 0 && st.mean_loss == 0 && st.sum_loss == 0, "count %u mean %g", st.count, st.mean_loss);
    for (int i = 0; i < 15; i++) cr_expect_eq(g[i], 0.0f, "gradient %d is %g", i, g[i]);
    enn_buffer_destroy(ctx, bl), enn_buffer_destroy(ctx, blab), enn_buffer_destroy(ctx, bloss);
    enn_buffer_destroy(ctx, blse), enn_buffer_destroy(ctx, bpred), enn_buffer_destroy(ctx, bstats);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
