/* Gradient exchange (enn_model_read_gradients / write_gradients / apply_gradients), the
 * pieces of data-parallel training and gradient accumulation:
 *   - compute_gradients then apply_gradients trains bit for bit as train_step does;
 *   - the packed gradient array is the per-tensor "grad.<name>" tensors back to back;
 *   - data parallel: two models, each computing the gradients of one half of a batch,
 *     averaging them and applying the mean, train as one model on the whole batch does
 *     (the mean loss's gradient is the mean of the halves'); checked for the per-sample
 *     trace and for an LSTM, whose samples do not interact, against the whole-batch model
 *     (to fp32 summation order), and the two halves' models stay identical bit for bit;
 *   - applying without gradients, and arrays of the wrong size, are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model_snapshot.h"
#include "small_config.h"

enum { B = 8, HALF = B / 2, T = 5, D = 3, H = 8, N = 4, C = 3 };

static enn_model_config config(enn_model_kind kind, uint32_t max_batch)
{
    enn_model_config c = test_small_classifier(D, T, max_batch, C, H, N);
    c.kind = kind;
    if (kind != ENN_MODEL_ENN) {
        c.layers = 2;
        c.layer_units[0] = 8;
        c.layer_units[1] = 4;
    }
    c.optimizer.learning_rate = 0.01f;
    c.seed = 21;
    return c;
}

typedef struct batch_data {
    float x[B * T * D];
    uint32_t labels[B];
} batch_data;

static void make_batch(uint32_t i, batch_data *b)
{
    test_random_batch(500 + i, b->x, B * T * D, 1, b->labels, B, C);
}

/* Samples [first, first + size) of b (sample-major, so a contiguous slice). */
static enn_batch slice(const batch_data *b, uint32_t first, uint32_t size)
{
    return (enn_batch){.size = size, .seq_len = T, .x = b->x + (size_t)first * T * D, .labels = b->labels + first};
}

static float *gradients(enn_model *m, size_t *count)
{
    *count = enn_model_gradient_count(m);
    float *g = malloc(*count * sizeof *g);
    cr_assert_not_null(g);
    ENN_ASSERT_OK(enn_model_read_gradients(m, g, *count));
    return g;
}

Test(model_data_parallel, compute_then_apply_is_train_step)
{
    enn_context *ctx = test_context();
    /* The defaults otherwise: shared trace with noise, dropout 0.3, per-tensor clipping. */
    enn_model_config c = config(ENN_MODEL_ENN, B);
    enn_model *whole, *parts;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &whole));
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &parts));
    for (uint32_t i = 0; i < 3; i++) {
        batch_data b;
        make_batch(i, &b);
        enn_batch all = slice(&b, 0, B);
        enn_step_result r1, r2;
        ENN_ASSERT_OK(enn_model_train_step(whole, &all, &r1));
        ENN_ASSERT_OK(enn_model_compute_gradients(parts, &all, NULL, &r2));
        ENN_ASSERT_OK(enn_model_apply_gradients(parts));
        cr_expect_eq(memcmp(&r1.loss, &r2.loss, sizeof r1.loss), 0, "step %u: loss %.9g vs %.9g", i, r1.loss, r2.loss);
    }
    cr_expect_eq(enn_model_step_count(whole), 3);
    cr_expect_eq(enn_model_step_count(parts), 3);
    size_t nw, np;
    float *pw = test_model_snapshot(whole, 0, &nw), *pp = test_model_snapshot(parts, 0, &np);
    cr_assert_eq(nw, np);
    size_t first = test_first_difference(pw, pp, nw);
    cr_expect_eq(first, nw, "first difference at float %zu of %zu", first, nw);
    free(pw);
    free(pp);
    enn_model_destroy(whole);
    enn_model_destroy(parts);
    test_context_finish(ctx);
}

Test(model_data_parallel, packed_array_is_the_tensors_back_to_back)
{
    enn_context *ctx = test_context();
    enn_model_config c = config(ENN_MODEL_ENN, B);
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    batch_data b;
    make_batch(0, &b);
    enn_batch all = slice(&b, 0, B);
    ENN_ASSERT_OK(enn_model_compute_gradients(m, &all, NULL, NULL));
    size_t n;
    float *g = gradients(m, &n);
    uint64_t trainable = 0;
    ENN_ASSERT_OK(enn_model_parameter_count(&c, &trainable, NULL));
    cr_expect_eq(n, trainable, "%zu gradient floats for %llu trainable parameters", n, (unsigned long long)trainable);
    /* Per tensor, through "grad.<name>"; then write a new array and read it back by name. */
    float *want = malloc(n * sizeof *want), *mine = malloc(n * sizeof *mine);
    cr_assert(want && mine);
    for (size_t k = 0; k < n; k++) mine[k] = (float)k * 0.25f - 3.0f;
    ENN_ASSERT_OK(enn_model_write_gradients(m, mine, n));
    size_t at = 0;
    for (uint32_t i = 0; i < enn_model_parameter_tensors(m); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(m, i, &d));
        size_t count = (size_t)d.shape[0] * (d.rank == 2 ? d.shape[1] : 1);
        char name[96];
        snprintf(name, sizeof name, "grad.%s", d.name);
        ENN_ASSERT_OK(enn_model_read(m, name, want + at, count));
        cr_expect_eq(memcmp(want + at, mine + at, count * sizeof *want), 0, "%s: not where the packed array put it", name);
        at += count;
    }
    cr_expect_eq(at, n, "the tensors hold %zu floats, the packed array %zu", at, n);
    float *back = gradients(m, &n);
    cr_expect_eq(memcmp(back, mine, n * sizeof *back), 0, "read after write differs");
    int nonzero = 0;
    for (size_t k = 0; k < n; k++) nonzero |= g[k] != 0.0f;
    cr_expect(nonzero, "the computed gradients were all zero");
    free(g);
    free(want);
    free(mine);
    free(back);
    enn_model_destroy(m);
    test_context_finish(ctx);
}

/* Three steps of data-parallel training over two halves of each batch against one model
 * on the whole batch. Batch-independent models only: no trace noise (drawn per row of the
 * batch), no dropout, zero initial state. */
static void check_halves(enn_model_kind kind)
{
    enn_context *ctx = test_context();
    enn_model_config cw = config(kind, B), ch = config(kind, HALF);
    cw.dropout = ch.dropout = 0.0f;
    cw.cell.noise = ch.cell.noise = 0;
    cw.cell.trace_mode = ch.cell.trace_mode = ENN_TRACE_PER_SAMPLE;
    enn_model *whole, *half[2];
    ENN_ASSERT_OK(enn_model_create(ctx, &cw, &whole));
    ENN_ASSERT_OK(enn_model_create(ctx, &ch, &half[0]));
    ENN_ASSERT_OK(enn_model_create(ctx, &ch, &half[1]));
    static float h0[B * H], H0[B * N * H];   /* zeros */
    enn_forward_inputs zero = {.h0 = h0, .H0 = H0};
    const enn_forward_inputs *in = kind == ENN_MODEL_ENN ? &zero : NULL;
    double worst_grad = 0, largest_grad = 0;
    for (uint32_t i = 0; i < 3; i++) {
        batch_data b;
        make_batch(i, &b);
        enn_batch all = slice(&b, 0, B), part[2] = {slice(&b, 0, HALF), slice(&b, HALF, HALF)};
        enn_step_result rw, rh[2];
        ENN_ASSERT_OK(enn_model_compute_gradients(whole, &all, in, &rw));
        ENN_ASSERT_OK(enn_model_compute_gradients(half[0], &part[0], in, &rh[0]));
        ENN_ASSERT_OK(enn_model_compute_gradients(half[1], &part[1], in, &rh[1]));
        cr_expect_lt(fabs(rw.loss - 0.5 * (rh[0].loss + rh[1].loss)), 1e-5, "step %u: loss %g, halves %g and %g", i,
                     rw.loss, rh[0].loss, rh[1].loss);
        size_t n;
        float *gw = gradients(whole, &n), *g0 = gradients(half[0], &n), *g1 = gradients(half[1], &n);
        for (size_t k = 0; k < n; k++) {
            g0[k] = 0.5f * (g0[k] + g1[k]);   /* the all-reduce: a mean over two */
            if (i == 0) {
                worst_grad = fmax(worst_grad, fabs(g0[k] - gw[k]));
                largest_grad = fmax(largest_grad, fabs(gw[k]));
            }
        }
        ENN_ASSERT_OK(enn_model_write_gradients(half[0], g0, n));
        ENN_ASSERT_OK(enn_model_write_gradients(half[1], g0, n));
        ENN_ASSERT_OK(enn_model_apply_gradients(whole));
        ENN_ASSERT_OK(enn_model_apply_gradients(half[0]));
        ENN_ASSERT_OK(enn_model_apply_gradients(half[1]));
        free(gw);
        free(g0);
        free(g1);
    }
    cr_expect_gt(largest_grad, 1e-3, "the gradients are too small to tell anything");
    cr_expect_lt(worst_grad, 1e-5 * largest_grad, "mean of the halves' gradients off by %g (largest %g)", worst_grad,
                 largest_grad);
    size_t n0, n1, nw;
    float *p0 = test_model_snapshot(half[0], 0, &n0), *p1 = test_model_snapshot(half[1], 0, &n1),
          *pw = test_model_snapshot(whole, 0, &nw);
    cr_assert(n0 == n1 && n0 == nw);
    size_t first = test_first_difference(p0, p1, n0);
    cr_expect_eq(first, n0, "the two halves' models differ at float %zu", first);
    /* Parameters only (the snapshot's first third holds them; the moments follow). */
    double worst = 0;
    for (size_t k = 0; k < nw / 3; k++) worst = fmax(worst, fabs(p0[k] - pw[k]));
    cr_expect_lt(worst, 1e-5, "parameters after 3 steps differ from the whole batch's by %g", worst);
    free(p0);
    free(p1);
    free(pw);
    enn_model_destroy(whole);
    enn_model_destroy(half[0]);
    enn_model_destroy(half[1]);
    test_context_finish(ctx);
}

Test(model_data_parallel, enn_halves_train_as_the_whole_batch) { check_halves(ENN_MODEL_ENN); }
Test(model_data_parallel, lstm_halves_train_as_the_whole_batch) { check_halves(ENN_MODEL_LSTM); }

Test(model_data_parallel, refuses_what_cannot_be_applied)
{
    enn_context *ctx = test_context();
    enn_model_config c = config(ENN_MODEL_ENN, B);
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    /* Nothing computed yet. */
    cr_expect_eq(enn_model_apply_gradients(m), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "no gradients") != NULL, "message: %s", enn_last_error());
    batch_data b;
    make_batch(0, &b);
    enn_batch all = slice(&b, 0, B);
    ENN_ASSERT_OK(enn_model_compute_gradients(m, &all, NULL, NULL));
    ENN_ASSERT_OK(enn_model_apply_gradients(m));
    /* Applied once: not again, and a training step leaves nothing to apply either. */
    cr_expect_eq(enn_model_apply_gradients(m), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_model_compute_gradients(m, &all, NULL, NULL));
    ENN_ASSERT_OK(enn_model_train_step(m, &all, NULL));
    cr_expect_eq(enn_model_apply_gradients(m), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(enn_model_step_count(m), 2);
    /* Wrong sizes and NULL arrays. */
    size_t n = enn_model_gradient_count(m);
    float *g = calloc(n + 1, sizeof *g);
    cr_assert_not_null(g);
    cr_expect_eq(enn_model_read_gradients(m, g, n - 1), ENN_ERROR_SHAPE);
    cr_expect(strstr(enn_last_error(), "gradient floats") != NULL, "message: %s", enn_last_error());
    cr_expect_eq(enn_model_write_gradients(m, g, n + 1), ENN_ERROR_SHAPE);
    cr_expect_eq(enn_model_read_gradients(m, NULL, n), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(enn_model_apply_gradients(NULL), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(enn_model_gradient_count(NULL), 0);
    /* A failed write leaves nothing to apply; a good one (or a tensor's) does. */
    cr_expect_eq(enn_model_apply_gradients(m), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_model_write(m, "grad.b_z", g, H));
    ENN_ASSERT_OK(enn_model_apply_gradients(m));
    ENN_ASSERT_OK(enn_model_write_gradients(m, g, n));
    ENN_ASSERT_OK(enn_model_apply_gradients(m));
    cr_expect_eq(enn_model_step_count(m), 4);
    free(g);
    enn_model_destroy(m);
    test_context_finish(ctx);
}
