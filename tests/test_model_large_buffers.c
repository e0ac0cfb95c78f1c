/* Whole models on the paths that only large shapes take, made to run at small shapes:
 *  - the language model's dh = dlogits W^T split over the vocabulary (split-K) against
 *    the same gradients computed with one GEMM (ENN_DISABLE_SPLIT_K);
 *  - the language model's logits in one chunk of rows (the default at these shapes) against
 *    one chunk per step (ENN_LM_CHUNK_ROWS);
 *  - training steps with clipnorm (per tensor and global) whose flat parameter buffers
 *    exceed one binding (ENN_MAX_BINDING_BYTES lowered below them), bit-identical to the
 *    same steps bound whole. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/model_stats.h"
#include "runtime_helpers.h"

#define B 4
#define T 3

static void lm_config(enn_model_config *c, uint32_t vocab)
{
    enn_model_config_init(c, ENN_HEAD_LANGUAGE_MODEL);
    c->max_batch = B;
    c->max_seq_len = T;
    c->outputs = vocab;
    c->embedding_dim = 8;
    c->cell.hidden = 8;
    c->cell.memory_slots = 4;
}

/* Every gradient tensor of the model, concatenated; returns the float count. */
static size_t read_grads(enn_model *m, float *out, size_t cap)
{
    size_t at = 0;
    for (uint32_t i = 0; i < enn_model_parameter_tensors(m); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(m, i, &d));
        size_t n = 1;
        for (uint32_t r = 0; r < d.rank; r++) n *= d.shape[r];
        cr_assert_leq(at + n, cap);
        char name[128];
        snprintf(name, sizeof name, "grad.%s", d.name);
        ENN_ASSERT_OK(enn_model_read(m, name, out + at, n));
        at += n;
    }
    return at;
}

/* Both evaluations are fp32 sums of the same products in different orders: dh's
 * V = 8200-term sums differ by ~sqrt(V) 2^-24 ~ 5e-6 of their magnitude, and the short
 * backward (T = 3) carries that to the other gradients without more than a few times
 * amplification; 1e-4 of each tensor's largest gradient leaves a 20x margin, while a
 * lost or doubled slice of the four changes dh by a quarter. */
#define TOL_SPLIT 1e-4

Test(model_large_buffers, language_model_split_k_dh)
{
    const uint32_t V = 8200;
    enn_model_config c;
    lm_config(&c, V);
    uint32_t tokens[B * T], targets[B * T];
    for (int i = 0; i < B * T; i++) tokens[i] = (uint32_t)(1 + (i * 977) % (V - 1)), targets[i] = (uint32_t)((i * 613) % V);
    targets[5] = 0; /* one padding target */
    enn_batch batch = {.size = B, .seq_len = T, .tokens = tokens, .targets = targets};
    size_t cap = 1 << 20;
    float *g[2] = {malloc(cap * 4), malloc(cap * 4)};
    size_t n[2];
    uint32_t dispatches[2];
    for (int plain = 0; plain < 2; plain++) {
        if (plain) test_setenv("ENN_DISABLE_SPLIT_K", "1"); /* read when the context is created */
        enn_context *ctx = test_context();
        unsetenv("ENN_DISABLE_SPLIT_K");
        enn_model *m;
        ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
        enn_step_result r;
        ENN_ASSERT_OK(enn_model_compute_gradients(m, &batch, NULL, &r));
        enn_model_step_stats st;
        ENN_ASSERT_OK(enn_model_last_step_stats(m, &st));
        dispatches[plain] = st.dispatches;
        n[plain] = read_grads(m, g[plain], cap);
        enn_model_destroy(m);
        test_context_finish(ctx);
    }
    /* split-K adds its sum (and a tail GEMM) per chunk of rows: proof it ran */
    cr_expect_gt(dispatches[0], dispatches[1], "split-K did not run (%u vs %u dispatches)", dispatches[0], dispatches[1]);
    cr_assert_eq(n[0], n[1]);
    double gmax = 0, emax = 0;
    for (size_t i = 0; i < n[0]; i++) {
        gmax = fmax(gmax, fabs(g[1][i]));
        emax = fmax(emax, fabs(g[0][i] - g[1][i]));
    }
    cr_expect(gmax > 0, "all gradients are zero");
    cr_expect(emax <= TOL_SPLIT * gmax, "split-K gradients differ by %g (largest gradient %g)", emax, gmax);
    free(g[0]), free(g[1]);
}

/* One chunk against T chunks: the same products, summed in another order (dW and db
 * accumulate chunk by chunk, and each chunk's gradient scale is count_k / total / count_k
 * instead of 1 / total, one rounding apart). Sums of B*T = 12 rows, so the fp32 orders
 * differ by a few 2^-24 of the largest term; 1e-5 of the largest gradient is a wide margin
 * for that, while a chunk's rows lost, doubled or scaled by the wrong count move gradients
 * by a third or more. */
#define TOL_CHUNKS 1e-5

Test(model_large_buffers, language_model_chunk_rows_override)
{
    const uint32_t V = 300;
    enn_model_config c;
    lm_config(&c, V);
    uint32_t tokens[B * T], targets[B * T];
    for (int i = 0; i < B * T; i++) tokens[i] = (uint32_t)(1 + (i * 97) % (V - 1)), targets[i] = (uint32_t)((i * 61 + 7) % V);
    targets[4] = 0, targets[9] = 0; /* padding targets, in different steps */
    enn_batch batch = {.size = B, .seq_len = T, .tokens = tokens, .targets = targets};
    size_t cap = 1 << 20;
    float *g[2] = {malloc(cap * 4), malloc(cap * 4)};
    size_t n[2];
    uint32_t dispatches[2];
    float loss[2];
    for (int chunked = 0; chunked < 2; chunked++) {
        if (chunked) test_setenv("ENN_LM_CHUNK_ROWS", "1"); /* rounded up to Bp: one step per chunk */
        enn_context *ctx = test_context();
        unsetenv("ENN_LM_CHUNK_ROWS");
        enn_model *m;
        ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
        enn_step_result r;
        ENN_ASSERT_OK(enn_model_compute_gradients(m, &batch, NULL, &r));
        loss[chunked] = r.loss;
        enn_model_step_stats st;
        ENN_ASSERT_OK(enn_model_last_step_stats(m, &st));
        dispatches[chunked] = st.dispatches;
        n[chunked] = read_grads(m, g[chunked], cap);
        if (chunked) {
            /* Chunked logits are not kept: asking evaluate for them is refused before the
             * pass runs (the pass count, which places the noise streams, stays). */
            uint64_t passes = enn_model_pass_count(m);
            float *out = malloc((size_t)B * T * V * sizeof *out);
            cr_assert_eq(enn_model_evaluate(m, &batch, NULL, out), ENN_ERROR_UNSUPPORTED);
            cr_expect_eq(enn_model_pass_count(m), passes, "the refused evaluation ran its pass");
            free(out);
        }
        enn_model_destroy(m);
        test_context_finish(ctx);
    }
    /* A row count that is not one: refused by name, not ignored, by the models of a
     * context created while it is set; one created before never sees it. */
    enn_context *before = test_context();
    test_setenv("ENN_LM_CHUNK_ROWS", "7x");
    enn_context *after = test_context();
    unsetenv("ENN_LM_CHUNK_ROWS");
    enn_model *refused = NULL, *unaffected = NULL;
    cr_expect_eq(enn_model_create(after, &c, &refused), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "ENN_LM_CHUNK_ROWS=7x"), "%s", enn_last_error());
    test_setenv("ENN_LM_CHUNK_ROWS", "7x");
    ENN_ASSERT_OK(enn_model_create(before, &c, &unaffected));
    unsetenv("ENN_LM_CHUNK_ROWS");
    enn_model_destroy(unaffected);
    test_context_finish(after);
    test_context_finish(before);
    /* every chunk records its own GEMMs and losses: proof the override took */
    cr_expect_gt(dispatches[1], dispatches[0], "ENN_LM_CHUNK_ROWS changed nothing (%u vs %u dispatches)",
                 dispatches[1], dispatches[0]);
    cr_expect(fabsf(loss[0] - loss[1]) <= 1e-5f * fabsf(loss[0]), "loss %g chunked vs %g whole", loss[1], loss[0]);
    cr_assert_eq(n[0], n[1]);
    double gmax = 0, emax = 0;
    for (size_t i = 0; i < n[0]; i++) {
        gmax = fmax(gmax, fabs(g[0][i]));
        emax = fmax(emax, fabs(g[0][i] - g[1][i]));
    }
    cr_expect(gmax > 0, "all gradients are zero");
    cr_expect(emax <= TOL_CHUNKS * gmax, "chunked gradients differ by %g (largest gradient %g)", emax, gmax);
    free(g[0]), free(g[1]);
}

/* A classifier whose 100 KB of parameters exceed a 64 KiB binding (while each of its
 * tensors and activations fits): three training steps with clipnorm, then every
 * parameter and Adam moment must equal, bit for bit, those of the same steps with the
 * device's real limit. */
static void windowed_steps(enn_clip_mode clip, float clip_norm)
{
    enn_model_config c;
    enn_model_config_init(&c, ENN_HEAD_CLASSIFIER);
    c.max_batch = B;
    c.max_seq_len = T;
    c.input_features = 8;
    c.outputs = 5;
    c.cell.hidden = 40;
    c.cell.memory_slots = 8;
    c.optimizer.clip = clip;
    c.optimizer.clip_norm = clip_norm;
    float x[B * T * 8];
    uint32_t labels[B] = {0, 3, 1, 4};
    uint64_t seed = 9;
    for (int i = 0; i < B * T * 8; i++) x[i] = (float)test_rand_uniform(&seed, -1, 1);
    enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
    size_t cap = 1 << 20;
    float *state[2] = {malloc(cap * 4), malloc(cap * 4)};
    size_t n[2] = {0, 0};
    for (int lowered = 0; lowered < 2; lowered++) {
        if (lowered) test_setenv("ENN_MAX_BINDING_BYTES", "65536");
        enn_context *ctx = test_context();
        unsetenv("ENN_MAX_BINDING_BYTES");
        enn_model *m;
        ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
        uint64_t bytes;
        ENN_ASSERT_OK(enn_model_memory(m, &bytes, NULL));
        enn_step_result r;
        for (int s = 0; s < 3; s++) ENN_ASSERT_OK(enn_model_train_step(m, &batch, &r));
        const char *prefix[] = {"", "adam.m.", "adam.v."};
        uint64_t floats = 0;
        for (int p = 0; p < 3; p++)
            for (uint32_t i = 0; i < enn_model_parameter_tensors(m); i++) {
                enn_tensor_desc d;
                ENN_ASSERT_OK(enn_model_parameter_desc(m, i, &d));
                size_t count = 1;
                for (uint32_t k = 0; k < d.rank; k++) count *= d.shape[k];
                char name[128];
                snprintf(name, sizeof name, "%s%s", prefix[p], d.name);
                cr_assert_leq(n[lowered] + count, cap);
                ENN_ASSERT_OK(enn_model_read(m, name, state[lowered] + n[lowered], count));
                n[lowered] += count;
                if (p == 0) floats += count;
            }
        if (lowered) cr_assert_gt(floats * 4, 65536, "the parameters (%llu floats) fit one lowered binding",
                                  (unsigned long long)floats);
        enn_model_destroy(m);
        test_context_finish(ctx);
    }
    cr_assert_eq(n[0], n[1]);
    size_t diff = 0;
    for (size_t i = 0; i < n[0]; i++) diff += memcmp(&state[0][i], &state[1][i], 4) != 0;
    cr_expect_eq(diff, 0, "clip %d: %zu of %zu parameter and moment floats differ between windowed and whole bindings",
                 clip, diff, n[0]);
    free(state[0]), free(state[1]);
}

Test(model_large_buffers, windowed_adam_per_tensor_clip) { windowed_steps(ENN_CLIP_PER_TENSOR, 1.0f); }
Test(model_large_buffers, windowed_adam_global_clip) { windowed_steps(ENN_CLIP_GLOBAL, 0.5f); }
