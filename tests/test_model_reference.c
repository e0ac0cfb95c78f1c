/* The device model against the plain C double-precision reference (tests/common/ref_enn.c),
 * with the model's own initial parameters, on shapes the PyTorch fixtures do not cover:
 * a batch smaller than the model's maximum right after a full one (padding rows and stale
 * rows must not leak), shorter sequences than the maximum, and a larger per-sample case.
 * Also: a small data set is memorised (only correct gradients get there). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "small_config.h"
#include "ref_enn.h"

typedef struct case_spec {
    uint32_t max_B, max_T, B, T, d, h, N, classes;
    int per_sample, stop, layer_norm, last;
} case_spec;

static ref_enn_config ref_config(const case_spec *s)
{
    ref_enn_config c = ref_enn_config_default((int)s->B, (int)s->T, (int)s->d, (int)s->h, (int)s->N);
    c.layer_norm = s->layer_norm;
    c.trace_mode = s->per_sample ? REF_ENN_TRACE_PER_SAMPLE : REF_ENN_TRACE_SHARED;
    c.trace_grad = s->stop ? REF_ENN_TRACE_GRAD_STOP : REF_ENN_TRACE_GRAD_EXACT;
    c.head = REF_ENN_HEAD_CLASSIFIER;
    c.pooling = s->last ? REF_ENN_POOL_LAST : REF_ENN_POOL_ATTENTION;
    c.num_classes = (int)s->classes;
    c.dropout_rate = 0.3;
    return c;
}

static enn_model_config model_config(const case_spec *s)
{
    enn_model_config c;
    enn_model_config_init(&c, ENN_HEAD_CLASSIFIER);
    c.max_batch = s->max_B;
    c.max_seq_len = s->max_T;
    c.input_features = s->d;
    c.outputs = s->classes;
    c.cell.hidden = s->h;
    c.cell.memory_slots = s->N;
    c.cell.layer_norm = s->layer_norm;
    c.cell.trace_mode = s->per_sample ? ENN_TRACE_PER_SAMPLE : ENN_TRACE_SHARED;
    c.cell.trace_gradient = s->stop ? ENN_TRACE_GRADIENT_STOP : ENN_TRACE_GRADIENT_EXACT;
    c.pooling = s->last ? ENN_POOL_LAST : ENN_POOL_ATTENTION;
    c.seed = 1234 + s->h;
    return c;
}

static float *randf(size_t n, double lo, double hi, uint64_t *seed)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)test_rand_uniform(seed, lo, hi);
    return x;
}

static double *to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

typedef struct check {
    const char *name;
    const double *ref;
    size_t n;
} check;

/* A pass of B samples and T steps on the device (explicit h0, H0, noise, keep mask), then
 * the same in double on the reference; every output and gradient compared. */
static void compare_pass(enn_model *model, const case_spec *s, uint64_t seed)
{
    ref_enn_config rc = ref_config(s);
    uint32_t B = s->B, T = s->T, h = s->h, N = s->N, nH = s->per_sample ? B : 1;
    size_t nx = (size_t)B * T * s->d, ntrace = (size_t)nH * N * h;
    float *x = randf(nx, -1, 1, &seed), *h0 = randf((size_t)B * h, -0.1, 0.1, &seed);
    float *H0 = randf(ntrace, -0.05, 0.05, &seed), *xi = randf(T * ntrace, -0.002, 0.002, &seed);
    float *keep = malloc((size_t)B * h * sizeof *keep);
    unsigned char *keep_u8 = malloc((size_t)B * h);
    uint32_t *labels = malloc(B * sizeof *labels);
    int *labels_i = malloc(B * sizeof *labels_i);
    for (size_t i = 0; i < (size_t)B * h; i++) keep_u8[i] = (unsigned char)(test_rand_u64(&seed) % 10 >= 3), keep[i] = keep_u8[i];
    for (uint32_t i = 0; i < B; i++) labels_i[i] = (int)(labels[i] = (uint32_t)(test_rand_u64(&seed) % s->classes));

    enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
    enn_forward_inputs in = {.h0 = h0, .H0 = H0, .noise = xi, .keep_mask = keep};
    enn_step_result r;
    ENN_ASSERT_OK(enn_model_compute_gradients(model, &batch, &in, &r));

    /* The device model's parameters, in the reference's layout. */
    size_t np = ref_enn_num_params(&rc);
    double *params = calloc(np, sizeof *params);
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(model, i, &d));
        ref_enn_tensor storage;
        const ref_enn_tensor *t = ref_enn_find(&rc, d.name, &storage);
        cr_assert_not_null(t, "the reference has no %s", d.name);
        float *p = malloc(t->count * sizeof *p);
        ENN_ASSERT_OK(enn_model_read(model, d.name, p, t->count));
        for (size_t k = 0; k < t->count; k++) params[t->offset + k] = p[k];
        free(p);
    }
    double *xd = to_double(x, nx), *h0d = to_double(h0, (size_t)B * h), *H0d = to_double(H0, ntrace);
    double *xid = to_double(xi, T * ntrace);
    ref_enn_inputs rin = {.x = xd, .labels = labels_i, .h0 = h0d, .H0 = H0d, .xi = xid, .keep = keep_u8};
    ref_enn_tape *tape = ref_enn_tape_new(&rc);
    double loss = ref_enn_forward(&rc, params, &rin, tape);
    ref_enn_grads g = {.params = calloc(np, sizeof(double)), .x = calloc(nx, sizeof(double)),
                       .h0 = calloc((size_t)B * h, sizeof(double)), .H0 = calloc(ntrace, sizeof(double))};
    ref_enn_backward(&rc, params, &rin, tape, &g);

    cr_expect(fabs(r.loss - loss) <= 1e-4 * fabs(loss) + 1e-6, "loss %.7g, reference %.7g", r.loss, loss);
    /* Same tolerance argument as test_model_fixtures.c: 3e-4 of each tensor's scale. */
    check checks[64];
    size_t nc = 0;
    checks[nc++] = (check){"out.hs", tape->hs + (size_t)B * h, (size_t)T * B * h};
    checks[nc++] = (check){"out.H_T", ref_enn_final_trace(tape), ntrace};
    checks[nc++] = (check){"out.logits", tape->logits, (size_t)B * s->classes};
    checks[nc++] = (check){"grad.input.x", g.x, nx};
    checks[nc++] = (check){"grad.input.h0", g.h0, (size_t)B * h};
    if (!s->stop) checks[nc++] = (check){"grad.input.H0", g.H0, ntrace};
    char names[32][64];
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(model, i, &d));
        ref_enn_tensor storage;
        const ref_enn_tensor *t = ref_enn_find(&rc, d.name, &storage);
        snprintf(names[i], sizeof names[i], "grad.%s", d.name);
        checks[nc++] = (check){names[i], g.params + t->offset, t->count};
    }
    for (size_t c = 0; c < nc; c++) {
        float *got = malloc(checks[c].n * sizeof *got);
        ENN_ASSERT_OK(enn_model_read(model, checks[c].name, got, checks[c].n));
        double scale = 0, err = 0;
        for (size_t i = 0; i < checks[c].n; i++) {
            scale = fmax(scale, fabs(checks[c].ref[i]));
            err = fmax(err, fabs(got[i] - checks[c].ref[i]));
        }
        cr_expect(err <= 3e-4 * scale + 1e-6, "B=%u T=%u %s: max error %.3g, scale %.3g", B, T, checks[c].name, err,
                  scale);
        free(got);
    }
    ref_enn_tape_free(tape);
    free(g.params); free(g.x); free(g.h0); free(g.H0);
    free(params); free(xd); free(h0d); free(H0d); free(xid);
    free(x); free(h0); free(H0); free(xi); free(keep); free(keep_u8); free(labels); free(labels_i);
}

static void run_case(case_spec s)
{
    enn_context *ctx = test_context();
    enn_model_config c = model_config(&s);
    enn_model *model;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &model));
    /* A full batch first, so the smaller one after it runs over stale rows. */
    case_spec full = s;
    full.B = s.max_B;
    full.T = s.max_T;
    compare_pass(model, &full, 77);
    compare_pass(model, &s, 78);
    enn_model_destroy(model);
    test_context_finish(ctx);
}

Test(model_reference, smaller_batch_after_full_shared_exact)
{
    run_case((case_spec){.max_B = 5, .max_T = 8, .B = 3, .T = 6, .d = 4, .h = 6, .N = 7, .classes = 3,
                         .layer_norm = 1});
}

Test(model_reference, smaller_batch_after_full_per_sample_last)
{
    run_case((case_spec){.max_B = 6, .max_T = 7, .B = 1, .T = 7, .d = 3, .h = 5, .N = 4, .classes = 4,
                         .per_sample = 1, .layer_norm = 1, .last = 1});
}

Test(model_reference, stop_gradient_no_layer_norm)
{
    run_case((case_spec){.max_B = 4, .max_T = 5, .B = 4, .T = 3, .d = 2, .h = 9, .N = 3, .classes = 2, .stop = 1});
}

Test(model_reference, larger_shapes)
{
    run_case((case_spec){.max_B = 19, .max_T = 12, .B = 17, .T = 12, .d = 11, .h = 32, .N = 16, .classes = 10,
                         .layer_norm = 1});
}

/* 48 random sequences with random labels in six classes, learned until every one is
 * right. The pooled feature has 16 dimensions, so the output layer alone (on features
 * the recurrent part never learned) cannot separate that many random labels: getting
 * there needs correct gradients through the whole cell. */
Test(model_reference, memorises_a_small_data_set)
{
    enn_context *ctx = test_context();
    const uint32_t B = 48, T = 6, d = 3, C = 6;
    enn_model_config c = test_small_classifier(d, T, B, C, 16, 8);
    c.dropout = 0.0f;
    c.optimizer.learning_rate = 1e-2f;
    c.seed = 5;
    enn_model *model;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &model));
    uint64_t seed = 99;
    float *x = randf((size_t)B * T * d, -1, 1, &seed);
    uint32_t labels[48];
    for (uint32_t i = 0; i < B; i++) labels[i] = (uint32_t)(test_rand_u64(&seed) % C);
    enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
    enn_step_result r = {0}, first = {0};
    uint32_t steps = 0;
    for (; steps < 400; steps++) {
        ENN_ASSERT_OK(enn_model_train_step(model, &batch, &r));
        if (steps == 0) first = r;
        if (steps % 20 == 19) {
            enn_step_result e;
            ENN_ASSERT_OK(enn_model_evaluate(model, &batch, &e, NULL));
            if (e.correct == B) break;
        }
    }
    enn_step_result e;
    ENN_ASSERT_OK(enn_model_evaluate(model, &batch, &e, NULL));
    cr_log_info("memorised after %u steps: loss %.4f -> %.4f", steps + 1, first.loss, e.loss);
    cr_expect_eq(e.correct, B, "only %u of %u sequences right after %u steps (loss %.4f, first %.4f)", e.correct, B,
                 steps, e.loss, first.loss);
    cr_expect_lt(e.loss, 0.5 * first.loss);
    cr_expect_eq(enn_model_step_count(model), steps + (steps < 400 ? 1 : 0));
    free(x);
    enn_model_destroy(model);
    test_context_finish(ctx);
}

/* A stateful model's carried trace is readable and writable: writing the state a pass
 * ended with into a fresh model makes that model's next pass identical to the first
 * model's next pass. */
Test(model_reference, stateful_trace_read_and_write)
{
    enn_context *ctx = test_context();
    const uint32_t B = 4, T = 5, d = 3;
    enn_model_config c = test_small_classifier(d, T, B, 3, 8, 5);
    c.cell.stateful = 1;
    c.cell.trace_mode = ENN_TRACE_PER_SAMPLE;
    enn_model *a, *b;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &a));
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &b));
    uint64_t seed = 3;
    float *x1 = randf((size_t)B * T * d, -1, 1, &seed), *x2 = randf((size_t)B * T * d, -1, 1, &seed);
    uint32_t labels[4] = {0, 1, 2, 1};
    enn_batch b1 = {.size = B, .seq_len = T, .x = x1, .labels = labels};
    enn_batch b2 = {.size = B, .seq_len = T, .x = x2, .labels = labels};
    const size_t nh = (size_t)B * 8, nH = (size_t)B * 5 * 8;
    float *h = malloc(nh * sizeof *h), *H = malloc(nH * sizeof *H), *zero = calloc(nH, sizeof *zero);
    /* Before any pass the carried state is zero. */
    ENN_ASSERT_OK(enn_model_read(a, "state.H", H, nH));
    cr_assert_eq(memcmp(H, zero, nH * sizeof *H), 0);
    enn_step_result r;
    ENN_ASSERT_OK(enn_model_evaluate(a, &b1, &r, NULL));
    ENN_ASSERT_OK(enn_model_read(a, "state.h", h, nh));
    ENN_ASSERT_OK(enn_model_read(a, "state.H", H, nH));
    float *HT = malloc(nH * sizeof *HT);
    ENN_ASSERT_OK(enn_model_read(a, "out.H_T", HT, nH));
    cr_assert_eq(memcmp(H, HT, nH * sizeof *H), 0, "the carried trace is the last pass's final trace");
    cr_assert_neq(memcmp(H, zero, nH * sizeof *H), 0);
    ENN_ASSERT_OK(enn_model_write(b, "state.h", h, nh));
    ENN_ASSERT_OK(enn_model_write(b, "state.H", H, nH));
    float la[12], lb[12];
    ENN_ASSERT_OK(enn_model_evaluate(a, &b2, &r, la));
    ENN_ASSERT_OK(enn_model_evaluate(b, &b2, &r, lb));
    cr_assert_eq(memcmp(la, lb, sizeof la), 0, "a model given the carried state goes on exactly like the original");
    /* A pass refused for its batch leaves the carried state alone, given h0 and all; the
     * logits are read only into as many floats as they are. */
    float *h_before = malloc(nh * sizeof *h), *h_after = malloc(nh * sizeof *h);
    ENN_ASSERT_OK(enn_model_read(b, "state.h", h_before, nh));
    enn_forward_inputs given = {.h0 = zero};
    enn_batch no_x = b2;
    no_x.x = NULL;
    cr_assert_eq(enn_model_compute_gradients(b, &no_x, &given, &r), ENN_ERROR_INVALID_ARGUMENT);
    uint32_t bad_labels[4] = {0, 1, 7, 1};
    enn_batch bad = b2;
    bad.labels = bad_labels;
    cr_assert_eq(enn_model_compute_gradients(b, &bad, &given, &r), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "label 7 of sample 2"), "%s", enn_last_error());
    ENN_ASSERT_OK(enn_model_read(b, "state.h", h_after, nh));
    cr_assert_eq(memcmp(h_before, h_after, nh * sizeof *h), 0, "a refused pass changed the carried state");
    float *x_nan = malloc((size_t)B * T * d * sizeof *x_nan);
    memcpy(x_nan, x2, (size_t)B * T * d * sizeof *x_nan);
    x_nan[(size_t)(2 * T + 1) * d + 2] = NAN;
    enn_batch nan_batch = b2;
    nan_batch.x = x_nan;
    cr_assert_eq(enn_model_evaluate(b, &nan_batch, &r, NULL), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "x of sample 2, step 1, feature 2 is nan"), "%s", enn_last_error());
    free(x_nan);
    cr_assert_eq(enn_model_read(b, "out.logits", lb, 11), ENN_ERROR_SHAPE);
    ENN_ASSERT_OK(enn_model_read(b, "out.logits", lb, 12));
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    free(h_before);
    free(h_after);
    /* A wrong size, and a model that carries nothing, are refused. */
    cr_assert_eq(enn_model_write(b, "state.H", H, nH - 1), ENN_ERROR_SHAPE);
    enn_model *c2;
    c.cell.stateful = 0;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &c2));
    cr_assert_eq(enn_model_write(c2, "state.H", H, nH), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "stateful") != NULL, "%s", enn_last_error());
    free(x1); free(x2); free(h); free(H); free(HT); free(zero);
    enn_model_destroy(a);
    enn_model_destroy(b);
    enn_model_destroy(c2);
    test_context_finish(ctx);
}
