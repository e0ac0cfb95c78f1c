/* Recomputing the trace in the backward pass (cell.recompute_interval = K) instead of
 * storing every H_t must change nothing but memory: the recomputed traces come from the
 * same kernels with the same inputs and noise, so training with K and without it gives
 * the same parameters, moments and final trace bit for bit. Intervals cover a partial
 * last segment (K = 3 with T = 7), the smallest interval (2) and one longer than the
 * sequence (every trace but H_0 and H_T recomputed), in each trace mode and gradient
 * mode, and a stateful model whose carried trace lives in the final slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model_snapshot.h"
#include "small_config.h"

enum { B = 3, T = 7, D = 3, H = 8, N = 5, C = 3, STEPS = 3 };

static enn_model_config config(enn_trace_mode mode, enn_trace_gradient gradient, int stateful, uint32_t K)
{
    enn_model_config c = test_small_classifier(D, T, B, C, H, N);
    c.cell.noise_std = 0.05f;      /* a wrong noise stream in the recomputation would show */
    c.cell.hebbian_rate = 0.5f;    /* a fast trace reaches the clip, so the masks matter */
    c.cell.trace_mode = mode;
    c.cell.trace_gradient = gradient;
    c.cell.stateful = stateful;
    c.cell.recompute_interval = K;
    c.optimizer.learning_rate = 0.01f;
    c.seed = 11;
    return c;
}

static void train(enn_model *m)
{
    for (uint32_t i = 0; i < STEPS; i++) {
        float x[B * T * D];
        uint32_t labels[B];
        test_random_batch(500 + i, x, B * T * D, 3, labels, B, C);
        enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
        ENN_ASSERT_OK(enn_model_train_step(m, &batch, NULL));
    }
}

/* Every parameter, both Adam moments and the last pass's final trace, concatenated. */
static float *snapshot(enn_model *m, size_t *count, size_t trace)
{
    float *all = test_model_snapshot(m, trace, count);
    ENN_ASSERT_OK(enn_model_read(m, "out.H_T", all + *count - trace, trace));
    return all;
}

static void expect_same_training(enn_trace_mode mode, enn_trace_gradient gradient, int stateful, uint32_t K)
{
    enn_context *ctx = test_context();
    enn_model_config stored = config(mode, gradient, stateful, 0), recomputed = config(mode, gradient, stateful, K);
    ENN_ASSERT_OK(enn_model_config_check(&recomputed));
    enn_model *a, *b;
    ENN_ASSERT_OK(enn_model_create(ctx, &stored, &a));
    ENN_ASSERT_OK(enn_model_create(ctx, &recomputed, &b));
    train(a);
    train(b);
    size_t trace = (size_t)(mode == ENN_TRACE_PER_SAMPLE ? B : 1) * N * H, na, nb;
    float *pa = snapshot(a, &na, trace), *pb = snapshot(b, &nb, trace);
    cr_assert_eq(na, nb);
    size_t first = test_first_difference(pa, pb, na);
    cr_expect_eq(first, na, "mode %d, gradient %d, stateful %d, K = %u: first difference at float %zu of %zu: %.9g vs %.9g",
                 (int)mode, (int)gradient, stateful, K, first, na, pa[first < na ? first : 0], pb[first < na ? first : 0]);
    free(pa);
    free(pb);
    enn_model_destroy(a);
    enn_model_destroy(b);
    test_context_finish(ctx);
}

Test(model_recompute, shared_exact) { expect_same_training(ENN_TRACE_SHARED, ENN_TRACE_GRADIENT_EXACT, 0, 3); }
Test(model_recompute, shared_exact_interval_2) { expect_same_training(ENN_TRACE_SHARED, ENN_TRACE_GRADIENT_EXACT, 0, 2); }
Test(model_recompute, shared_exact_interval_past_T) { expect_same_training(ENN_TRACE_SHARED, ENN_TRACE_GRADIENT_EXACT, 0, 20); }
Test(model_recompute, shared_stop) { expect_same_training(ENN_TRACE_SHARED, ENN_TRACE_GRADIENT_STOP, 0, 3); }
Test(model_recompute, per_sample_exact) { expect_same_training(ENN_TRACE_PER_SAMPLE, ENN_TRACE_GRADIENT_EXACT, 0, 3); }
Test(model_recompute, per_sample_stateful) { expect_same_training(ENN_TRACE_PER_SAMPLE, ENN_TRACE_GRADIENT_EXACT, 1, 4); }

Test(model_recompute, interval_1_is_refused)
{
    enn_model_config c = config(ENN_TRACE_SHARED, ENN_TRACE_GRADIENT_EXACT, 0, 1);
    cr_expect_eq(enn_model_config_check(&c), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "recompute_interval") != NULL, "message: %s", enn_last_error());
}
