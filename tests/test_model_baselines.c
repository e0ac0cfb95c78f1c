/* The baselines (SimpleRNN, GRU, LSTM; two stacked layers):
 *   - the double reference's backward against finite differences of its forward;
 *   - the device's stack (models/rnn_layers.c) against the reference: the top layer's
 *     hidden states and the gradient of every weight and of the input, for two batch
 *     shapes in a row on one stack (the second smaller, so stale rows would show);
 *   - Keras's initialisation of the LSTM bias (forget gate 1);
 *   - a tiny data set memorised to 100% training accuracy through the model API. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "models/config.h"
#include "models/rnn_layers.h"
#include "ops_testutil.h"
#include "ref_gradcheck.h"
#include "ref_rnn.h"

static const char *kind_name(enn_model_kind k) { return k == ENN_MODEL_RNN ? "rnn" : k == ENN_MODEL_GRU ? "gru" : "lstm"; }

/* A two-layer stack of `kind` under `head`, units u0 then u1, input [T, d], batches of up
 * to B, `outputs` outputs; the spec's defaults otherwise. */
static enn_model_config two_layers(enn_model_kind kind, enn_head_kind head, uint32_t u0, uint32_t u1, uint32_t d,
                                   uint32_t T, uint32_t B, uint32_t outputs)
{
    enn_model_config c;
    enn_model_config_init(&c, head);
    c.kind = kind;
    c.layers = 2;
    c.layer_units[0] = u0;
    c.layer_units[1] = u1;
    c.input_features = d;
    c.max_seq_len = T;
    c.max_batch = B;
    c.outputs = outputs;
    return c;
}

/* ---------------------------------------------------------------- reference vs finite differences */

typedef struct fd_problem {
    ref_rnn r;
    uint64_t nW[2], nU[2], nb[2];
    size_t nx, total; /* x, then per layer W, U, b, packed in one array */
} fd_problem;

static void unpack(fd_problem *p, const double *flat)
{
    const double *at = flat + p->nx;
    for (uint32_t l = 0; l < p->r.layers; l++) {
        p->r.W[l] = at, at += p->nW[l];
        p->r.U[l] = at, at += p->nU[l];
        p->r.b[l] = at, at += p->nb[l];
    }
}

static void fd_forward(void *user, const double *flat, double *y)
{
    fd_problem *p = user;
    unpack(p, flat);
    ref_rnn_forward(&p->r, flat, y);
}

/* Central differences with step 1e-6 (relative to max(|v|, 1)) of a smooth function of
 * O(1) values: truncation ~1e-12 times third derivatives, rounding ~1e-10; a wrong term
 * moves a gradient by its own size. Bound 1e-6 of the largest gradient. */
static void check_reference(enn_model_kind kind)
{
    uint64_t st = 100 + kind;
    fd_problem p = {.r = {.kind = kind, .layers = 2, .units = {4, 3}, .T = 4, .B = 2, .d = 3}};
    p.nx = (size_t)p.r.T * p.r.B * p.r.d;
    p.total = p.nx;
    for (uint32_t l = 0; l < 2; l++) {
        ref_rnn_param_sizes(&p.r, l, &p.nW[l], &p.nU[l], &p.nb[l]);
        p.total += p.nW[l] + p.nU[l] + p.nb[l];
    }
    double *flat = malloc(p.total * sizeof *flat), *fd = malloc(p.total * sizeof *fd);
    for (size_t i = 0; i < p.total; i++) flat[i] = test_rand_uniform(&st, -0.8, 0.8);
    size_t ny = (size_t)p.r.T * p.r.B * p.r.units[1];
    double *w = malloc(ny * sizeof *w);
    for (size_t i = 0; i < ny; i++) w[i] = test_rand_uniform(&st, -1, 1);
    ref_fd_gradient(fd_forward, &p, flat, p.total, ny, w, 1e-6, fd);

    double *grad = calloc(p.total, sizeof *grad);
    unpack(&p, flat);
    double *dW[2], *dU[2], *db[2], *at = grad + p.nx;
    for (uint32_t l = 0; l < 2; l++) {
        dW[l] = at, at += p.nW[l];
        dU[l] = at, at += p.nU[l];
        db[l] = at, at += p.nb[l];
    }
    ref_rnn_backward(&p.r, flat, w, dW, dU, db, grad);
    double worst = 0, scale = 1e-3;
    size_t at_worst = 0;
    for (size_t i = 0; i < p.total; i++) {
        scale = fmax(scale, fabs(fd[i]));
        if (fabs(fd[i] - grad[i]) > worst) worst = fabs(fd[i] - grad[i]), at_worst = i;
    }
    cr_assert_lt(worst / scale, 1e-6, "%s: finite-difference error %g at [%zu] (analytic %g, fd %g), scale %g",
                 kind_name(kind), worst, at_worst, grad[at_worst], fd[at_worst], scale);
    free(flat), free(fd), free(w), free(grad);
}

Test(baselines, reference_rnn_matches_finite_differences) { check_reference(ENN_MODEL_RNN); }
Test(baselines, reference_gru_matches_finite_differences) { check_reference(ENN_MODEL_GRU); }
Test(baselines, reference_lstm_matches_finite_differences) { check_reference(ENN_MODEL_LSTM); }

/* ---------------------------------------------------------------- device vs reference */

/* fp32 against double through two layers and up to 6 steps of sigmoid/tanh gates: the
 * errors that rounding leaves are ~1e-6 of each tensor's scale; a wrong gate, sign or
 * missing term is of the order of the scale itself. Bound 1e-4. */
#define DEVICE_TOL 1e-4

static void run_device_case(enn_context *ctx, enn_rnn_stack *s, const enn_layout *lay, enn_buffer *params,
                            enn_buffer *grads, uint64_t *st, uint32_t T, uint32_t B)
{
    const uint32_t d = s->d, Bp = s->Bp, f = s->layer[s->layers - 1].units;
    ref_rnn r = {.kind = s->kind, .layers = s->layers, .T = T, .B = B, .d = d};
    /* The reference reads the device's parameters (as doubles). */
    float *pf = tu_download(ctx, params, lay->bytes / 4);
    double *pd = tu_to_double(pf, lay->bytes / 4);
    for (uint32_t l = 0; l < s->layers; l++) {
        char name[64];
        r.units[l] = s->layer[l].units;
        snprintf(name, sizeof name, "layer%u.kernel", l);
        r.W[l] = pd + enn_layout_find(lay, name)->offset / 4;
        snprintf(name, sizeof name, "layer%u.recurrent_kernel", l);
        r.U[l] = pd + enn_layout_find(lay, name)->offset / 4;
        snprintf(name, sizeof name, "layer%u.bias", l);
        r.b[l] = pd + enn_layout_find(lay, name)->offset / 4;
    }
    size_t nx = (size_t)T * B * d, nh = (size_t)T * B * f;
    float *x = tu_random(st, nx, -1.5, 1.5), *dhs = tu_random(st, nh, -1, 1);
    double *xd = tu_to_double(x, nx), *dhsd = tu_to_double(dhs, nh);

    /* x into the stack's [T, Bp, d] layout (padding rows zero). */
    float *xp = calloc((size_t)s->T * Bp * d, sizeof *xp);
    for (uint32_t t = 0; t < T; t++) memcpy(xp + (size_t)t * Bp * d, x + (size_t)t * B * d, (size_t)B * d * 4);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, s->x, 0, xp, (size_t)s->T * Bp * d * 4));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_rnn_initial_state(s, rec, 0));
    ENN_ASSERT_OK(enn_rnn_forward(s, rec, T, B));
    ENN_ASSERT_OK(enn_recorder_run(rec));

    const enn_rnn_layer *top = enn_rnn_top(s);
    uint64_t slab = enn_view_round((uint64_t)Bp * f * 4);
    float *hs = malloc(nh * sizeof *hs);
    for (uint32_t t = 0; t < T; t++)
        ENN_ASSERT_OK(enn_buffer_download(ctx, top->hs, (t + 1) * slab, hs + (size_t)t * B * f, (size_t)B * f * 4));
    double *want_hs = malloc(nh * sizeof *want_hs);
    ref_rnn_forward(&r, xd, want_hs);
    double e = tu_rel_error(hs, want_hs, nh, 1e-6);
    cr_expect_lt(e, DEVICE_TOL, "%s T=%u B=%u: hs error %g", kind_name(s->kind), T, B, e);

    /* dL/dh of the top layer into its dhs slabs 1..T, then the backward. */
    float *dpad = calloc(slab / 4 * (s->T + 1), sizeof *dpad);
    for (uint32_t t = 0; t < T; t++) memcpy(dpad + (t + 1) * slab / 4, dhs + (size_t)t * B * f, (size_t)B * f * 4);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, top->dhs, 0, dpad, slab * (s->T + 1)));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_record_fill(rec, grads, 0, 0, 0));
    ENN_ASSERT_OK(enn_rnn_backward(s, rec, T, B, 1));
    ENN_ASSERT_OK(enn_recorder_run(rec));

    double *dW[ENN_MAX_LAYERS], *dU[ENN_MAX_LAYERS], *db[ENN_MAX_LAYERS];
    uint64_t nW[ENN_MAX_LAYERS], nU[ENN_MAX_LAYERS], nb[ENN_MAX_LAYERS];
    for (uint32_t l = 0; l < s->layers; l++) {
        ref_rnn_param_sizes(&r, l, &nW[l], &nU[l], &nb[l]);
        dW[l] = malloc(nW[l] * 8), dU[l] = malloc(nU[l] * 8), db[l] = malloc(nb[l] * 8);
    }
    double *dx = malloc(nx * sizeof *dx);
    ref_rnn_backward(&r, xd, dhsd, dW, dU, db, dx);
    float *g = tu_download(ctx, grads, lay->bytes / 4);
    for (uint32_t l = 0; l < s->layers; l++) {
        const char *names[3] = {"kernel", "recurrent_kernel", "bias"};
        double *want[3] = {dW[l], dU[l], db[l]};
        uint64_t n[3] = {nW[l], nU[l], nb[l]};
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "layer%u.%s", l, names[k]);
            const enn_tensor_info *t = enn_layout_find(lay, name);
            cr_assert_eq(t->count, n[k]);
            e = tu_rel_error(g + t->offset / 4, want[k], n[k], 1e-6);
            cr_expect_lt(e, DEVICE_TOL, "%s T=%u B=%u: grad.%s error %g", kind_name(s->kind), T, B, name, e);
        }
    }
    float *dxp = tu_download(ctx, s->dx, (size_t)T * Bp * d), *dxg = malloc(nx * sizeof *dxg);
    for (uint32_t t = 0; t < T; t++) memcpy(dxg + (size_t)t * B * d, dxp + (size_t)t * Bp * d, (size_t)B * d * 4);
    e = tu_rel_error(dxg, dx, nx, 1e-6);
    cr_expect_lt(e, DEVICE_TOL, "%s T=%u B=%u: dx error %g", kind_name(s->kind), T, B, e);

    enn_recorder_destroy(rec);
    for (uint32_t l = 0; l < s->layers; l++) free(dW[l]), free(dU[l]), free(db[l]);
    free(pf), free(pd), free(x), free(dhs), free(xd), free(dhsd), free(xp), free(hs), free(want_hs), free(dpad);
    free(dx), free(g), free(dxp), free(dxg);
}

/* Two batch shapes in a row: (6 steps, max_batch rows), then (5, second_batch). */
static void check_device_batches(enn_model_kind kind, uint32_t layers, const uint32_t *units, uint32_t d,
                                 uint32_t max_batch, uint32_t second_batch)
{
    uint64_t st = 7 + kind;
    enn_context *ctx = test_context();
    enn_model_config c;
    enn_model_config_init(&c, ENN_HEAD_REGRESSOR);
    c.kind = kind;
    c.layers = layers;
    for (uint32_t l = 0; l < layers; l++) c.layer_units[l] = units[l];
    c.input_features = d;
    c.max_seq_len = 6;
    c.max_batch = max_batch;
    c.outputs = 1;
    enn_layout lay;
    ENN_ASSERT_OK(enn_model_layout(&c, &lay));
    /* Random parameters of O(1) pre-activations, so that every gate works off its linear part. */
    float *p = tu_random(&st, lay.bytes / 4, -0.6, 0.6);
    enn_buffer *params = tu_buffer(ctx, p, lay.bytes / 4), *grads = tu_buffer(ctx, NULL, lay.bytes / 4);
    enn_rnn_stack s;
    ENN_ASSERT_OK(enn_rnn_stack_create(ctx, &c, &lay, params, grads, d, &s));
    run_device_case(ctx, &s, &lay, params, grads, &st, 6, max_batch);
    run_device_case(ctx, &s, &lay, params, grads, &st, 5, second_batch);
    enn_rnn_stack_destroy(&s);
    enn_buffer_destroy(ctx, params);
    enn_buffer_destroy(ctx, grads);
    free(p);
    test_context_finish(ctx);
}

static void check_device(enn_model_kind kind, uint32_t layers, const uint32_t *units, uint32_t d)
{
    check_device_batches(kind, layers, units, d, 5, 3);
}

static const uint32_t UNITS_6_5[2] = {6, 5};
Test(baselines, device_rnn_matches_reference) { check_device(ENN_MODEL_RNN, 2, UNITS_6_5, 4); }
Test(baselines, device_gru_matches_reference) { check_device(ENN_MODEL_GRU, 2, UNITS_6_5, 4); }
Test(baselines, device_lstm_matches_reference) { check_device(ENN_MODEL_LSTM, 2, UNITS_6_5, 4); }
/* One layer of 16 units: Bp = B rounded to 4, a different padding from the 6/5 stack's. */
static const uint32_t UNITS_16[1] = {16};
Test(baselines, device_gru_one_layer_matches_reference) { check_device(ENN_MODEL_GRU, 1, UNITS_16, 3); }
Test(baselines, device_lstm_one_layer_matches_reference) { check_device(ENN_MODEL_LSTM, 1, UNITS_16, 3); }
/* Units that are multiples of 4 run the whole-sequence recurrence on CPU devices
 * (rnn_recurrence.h; the *_gpu_plan run of this suite takes the per-step path): 20 units
 * are 5 vec4 groups, which the kernels' 4-group register blocks do not divide, and 11
 * then 9 rows are a full block of 8 and a partial one. */
static const uint32_t UNITS_20_8[2] = {20, 8};
Test(baselines, device_rnn_units_of_4_match_reference) { check_device_batches(ENN_MODEL_RNN, 2, UNITS_20_8, 3, 11, 9); }
Test(baselines, device_gru_units_of_4_match_reference) { check_device_batches(ENN_MODEL_GRU, 2, UNITS_20_8, 3, 11, 9); }
Test(baselines, device_lstm_units_of_4_match_reference)
{
    check_device_batches(ENN_MODEL_LSTM, 2, UNITS_20_8, 3, 11, 9);
}

/* ---------------------------------------------------------------- initialisation */

Test(baselines, lstm_forget_bias_is_one)
{
    enn_model_config c = two_layers(ENN_MODEL_LSTM, ENN_HEAD_CLASSIFIER, 8, 4, 3, 2, 2, 2);
    enn_context *ctx = test_context();
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    for (uint32_t l = 0; l < 2; l++) {
        uint32_t u = c.layer_units[l];
        float b[32];
        char name[32];
        snprintf(name, sizeof name, "layer%u.bias", l);
        ENN_ASSERT_OK(enn_model_read(m, name, b, 4 * u));
        for (uint32_t j = 0; j < 4 * u; j++)
            cr_expect_eq(b[j], j >= u && j < 2 * u ? 1.0f : 0.0f, "%s[%u] = %g", name, j, b[j]);
    }
    enn_model_destroy(m);
    test_context_finish(ctx);
}

/* ---------------------------------------------------------------- memorisation */

/* 12 random sequences with random labels out of 4 classes: fitting them all needs the
 * gradient of every layer to point the right way for many steps. Adam at 1e-2, no dropout;
 * 400 steps is several times what each baseline needs. */
static void check_memorises(enn_model_kind kind)
{
    enum { N = 12, T = 5, D = 3, C = 4 };
    uint64_t st = 42;
    float x[N * T * D];
    uint32_t labels[N];
    for (int i = 0; i < N * T * D; i++) x[i] = (float)test_rand_uniform(&st, -1, 1);
    for (int i = 0; i < N; i++) labels[i] = (uint32_t)(test_rand_u64(&st) % C);
    enn_model_config c = two_layers(kind, ENN_HEAD_CLASSIFIER, 16, 8, D, T, N, C);
    c.pooling = ENN_POOL_LAST;
    c.dropout = 0.0f;
    c.optimizer.learning_rate = 1e-2f;
    enn_context *ctx = test_context();
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    enn_batch b = {.size = N, .seq_len = T, .x = x, .labels = labels};
    enn_step_result first, r;
    ENN_ASSERT_OK(enn_model_evaluate(m, &b, &first, NULL));
    int step = 0;
    for (; step < 400; step++) {
        ENN_ASSERT_OK(enn_model_train_step(m, &b, &r));
        if (step % 20 == 19) {
            ENN_ASSERT_OK(enn_model_evaluate(m, &b, &r, NULL));
            if (r.correct == N) break;
        }
    }
    ENN_ASSERT_OK(enn_model_evaluate(m, &b, &r, NULL));
    cr_expect_eq(r.correct, N, "%s: %u of %d after %d steps (loss %g, initially %g)", kind_name(kind), r.correct, N,
                 step, r.loss, first.loss);
    cr_expect_lt(r.loss, first.loss, "%s: loss %g, initially %g", kind_name(kind), r.loss, first.loss);
    enn_model_destroy(m);
    test_context_finish(ctx);
}

Test(baselines, rnn_memorises_a_tiny_set) { check_memorises(ENN_MODEL_RNN); }
Test(baselines, gru_memorises_a_tiny_set) { check_memorises(ENN_MODEL_GRU); }
Test(baselines, lstm_memorises_a_tiny_set) { check_memorises(ENN_MODEL_LSTM); }

/* ---------------------------------------------------------------- stateful */

/* A stateful baseline that sees a sequence in two halves ends where a plain one that sees
 * it whole does: the second half's hidden states match the whole run's last steps (same
 * seed, same initialisation; only fp32 rounding of differently shaped GEMMs differs). */
static void check_stateful(enn_model_kind kind)
{
    enum { B = 3, T = 6, H = 3, D = 2 };
    uint64_t st = 5;
    float x[B * T * D], first[B * H * D], second[B * H * D], y[B * T];
    for (int i = 0; i < B * T * D; i++) x[i] = (float)test_rand_uniform(&st, -1, 1);
    for (int i = 0; i < B * T; i++) y[i] = 0.0f;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < H; t++)
            for (int k = 0; k < D; k++) {
                first[(b * H + t) * D + k] = x[(b * T + t) * D + k];
                second[(b * H + t) * D + k] = x[(b * T + H + t) * D + k];
            }
    /* units of 4: the fused recurrence on CPU devices (the GPU plan: per step) */
    enn_model_config c = two_layers(kind, ENN_HEAD_REGRESSOR, 8, 4, D, T, B, 1);
    c.return_sequences = 1;
    enn_context *ctx = test_context();
    enn_model *whole, *halves;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &whole));
    c.cell.stateful = 1;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &halves));
    enn_batch bw = {.size = B, .seq_len = T, .x = x, .y = y};
    enn_batch b1 = {.size = B, .seq_len = H, .x = first, .y = y}, b2 = {.size = B, .seq_len = H, .x = second, .y = y};
    enn_step_result r;
    float hw[T * B * 4], h2[H * B * 4];
    ENN_ASSERT_OK(enn_model_evaluate(whole, &bw, &r, NULL));
    ENN_ASSERT_OK(enn_model_read(whole, "out.hs", hw, T * B * 4));
    ENN_ASSERT_OK(enn_model_evaluate(halves, &b1, &r, NULL));
    ENN_ASSERT_OK(enn_model_evaluate(halves, &b2, &r, NULL));
    ENN_ASSERT_OK(enn_model_read(halves, "out.hs", h2, H * B * 4));
    double worst = 0;
    for (int i = 0; i < H * B * 4; i++) worst = fmax(worst, fabs(h2[i] - hw[H * B * 4 + i]));
    cr_expect_lt(worst, 1e-5, "%s: the carried state's run differs by %g", kind_name(kind), worst);
    /* And the carry matters: from zero, the second half gives other states. */
    float h0[H * B * 4];
    enn_model *fresh;
    c.cell.stateful = 0;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &fresh));
    ENN_ASSERT_OK(enn_model_evaluate(fresh, &b2, &r, NULL));
    ENN_ASSERT_OK(enn_model_read(fresh, "out.hs", h0, H * B * 4));
    double diff = 0;
    for (int i = 0; i < H * B * 4; i++) diff = fmax(diff, fabs(h0[i] - h2[i]));
    cr_expect_gt(diff, 1e-3, "%s: the carried state made no difference", kind_name(kind));
    enn_model_destroy(whole);
    enn_model_destroy(halves);
    enn_model_destroy(fresh);
    test_context_finish(ctx);
}

Test(baselines, rnn_stateful_carries_the_state) { check_stateful(ENN_MODEL_RNN); }
Test(baselines, gru_stateful_carries_the_state) { check_stateful(ENN_MODEL_GRU); }
Test(baselines, lstm_stateful_carries_the_state) { check_stateful(ENN_MODEL_LSTM); }

/* ---------------------------------------------------------------- saturation */

/* Inputs of +-60 drive every gate far into saturation (exp(2 * 60) overflows a float):
 * the hidden states must stay within [-1, 1] and every gradient finite. */
static void check_saturation(enn_model_kind kind)
{
    enum { B = 2, T = 3, D = 3, C = 2 };
    uint64_t st = 9;
    float x[B * T * D];
    uint32_t labels[B] = {0, 1};
    for (int i = 0; i < B * T * D; i++) x[i] = test_rand_uniform(&st, -1, 1) < 0 ? -60.0f : 60.0f;
    enn_model_config c = two_layers(kind, ENN_HEAD_CLASSIFIER, 8, 4, D, T, B, C);
    c.pooling = ENN_POOL_LAST;
    enn_context *ctx = test_context();
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    enn_batch b = {.size = B, .seq_len = T, .x = x, .labels = labels};
    enn_forward_inputs in = {.no_dropout = 1};
    enn_step_result r;
    ENN_ASSERT_OK(enn_model_compute_gradients(m, &b, &in, &r));
    float hs[T * B * 4];
    ENN_ASSERT_OK(enn_model_read(m, "out.hs", hs, T * B * 4));
    for (int i = 0; i < T * B * 4; i++)
        cr_expect(isfinite(hs[i]) && fabsf(hs[i]) <= 1.0f, "%s: h[%d] = %g", kind_name(kind), i, hs[i]);
    cr_expect(isfinite(r.loss), "%s: loss %g", kind_name(kind), r.loss);
    size_t n = enn_model_gradient_count(m);
    float *g = malloc(n * sizeof *g);
    cr_assert_not_null(g);
    ENN_ASSERT_OK(enn_model_read_gradients(m, g, n));
    for (size_t k = 0; k < n; k++) cr_expect(isfinite(g[k]), "%s: gradient %zu of %zu = %g", kind_name(kind), k, n, g[k]);
    free(g);
    enn_model_destroy(m);
    test_context_finish(ctx);
}

Test(baselines, rnn_saturated_gates_stay_finite) { check_saturation(ENN_MODEL_RNN); }
Test(baselines, gru_saturated_gates_stay_finite) { check_saturation(ENN_MODEL_GRU); }
Test(baselines, lstm_saturated_gates_stay_finite) { check_saturation(ENN_MODEL_LSTM); }
