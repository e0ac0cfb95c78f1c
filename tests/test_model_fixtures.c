/* The whole model on the device against values dumped from an independent PyTorch
 * transcription of the spec (bench/make_fixtures.py, float64): the loss, the outputs,
 * the final trace and the gradient of every parameter, of the input, of h0 and of H0,
 * for every option combination the fixtures cover; and the RNN/GRU/LSTM baselines
 * (base_*) against torch.nn's own recurrent kernels, with weights in libenn's layout. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/safetensors.h"

typedef struct fixture {
    enn_safetensors *st;
    json_t *config;
    enn_model_config model;
    uint32_t B, T;
} fixture;

static double jnum(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_number(v), "fixture config lacks %s", key);
    return json_number_value(v);
}

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static void load_fixture(const char *name, fixture *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/enn_torch/%s.safetensors", ENN_SOURCE_DIR, name);
    ENN_ASSERT_OK(enn_safetensors_read(path, &f->st));
    const char *cfg = enn_safetensors_meta(f->st, "config");
    cr_assert_not_null(cfg);
    json_error_t err;
    f->config = json_loads(cfg, 0, &err);
    cr_assert_not_null(f->config, "config JSON: %s", err.text);
    json_t *cell = json_object_get(f->config, "cell"), *task = json_object_get(f->config, "task");
    f->B = (uint32_t)jnum(f->config, "B");
    f->T = (uint32_t)jnum(f->config, "T");
    const char *model = jstr(task, "model");
    enn_head_kind head = !strcmp(model, "classifier") ? ENN_HEAD_CLASSIFIER
                         : !strcmp(model, "regressor") ? ENN_HEAD_REGRESSOR : ENN_HEAD_LANGUAGE_MODEL;
    enn_model_config *c = &f->model;
    enn_model_config_init(c, head);
    c->max_batch = f->B;
    c->max_seq_len = f->T;
    c->input_features = (uint32_t)jnum(cell, "d");
    json_t *baseline = json_object_get(f->config, "baseline");
    if (baseline) {
        const char *kind = jstr(baseline, "kind");
        c->kind = !strcmp(kind, "rnn") ? ENN_MODEL_RNN : !strcmp(kind, "gru") ? ENN_MODEL_GRU : ENN_MODEL_LSTM;
        json_t *units = json_object_get(baseline, "units");
        c->layers = (uint32_t)json_array_size(units);
        for (uint32_t i = 0; i < c->layers; i++)
            c->layer_units[i] = (uint32_t)json_integer_value(json_array_get(units, i));
    } else {
        c->cell.hidden = (uint32_t)jnum(cell, "h");
        c->cell.memory_slots = (uint32_t)jnum(cell, "N");
        c->cell.hebbian_rate = (float)jnum(cell, "eta");
        c->cell.trace_scale = (float)jnum(cell, "alpha");
        c->cell.temperature = (float)jnum(cell, "tau");
        c->cell.sparsity = (float)jnum(cell, "lam");
        c->cell.layer_norm = json_is_true(json_object_get(cell, "layer_norm"));
        c->cell.trace_mode = !strcmp(jstr(cell, "trace_mode"), "per_sample") ? ENN_TRACE_PER_SAMPLE : ENN_TRACE_SHARED;
        c->cell.trace_gradient = !strcmp(jstr(cell, "trace_gradient"), "stop") ? ENN_TRACE_GRADIENT_STOP
                                                                                 : ENN_TRACE_GRADIENT_EXACT;
    }
    if (head == ENN_HEAD_CLASSIFIER) {
        c->outputs = (uint32_t)jnum(task, "C");
        c->dropout = (float)jnum(task, "dropout_rate");
        c->pooling = !strcmp(jstr(task, "pooling"), "last") ? ENN_POOL_LAST : ENN_POOL_ATTENTION;
    } else if (head == ENN_HEAD_REGRESSOR) {
        c->outputs = (uint32_t)jnum(task, "k");
        c->return_sequences = !strcmp(jstr(task, "regressor_output"), "sequence");
    } else {
        c->outputs = (uint32_t)jnum(task, "V");
        if (!strcmp(jstr(task, "lm_input"), "float")) {
            c->lm_input = ENN_LM_FLOAT_FEATURE;
            c->input_features = 1;
        } else {
            c->lm_input = ENN_LM_EMBEDDING;
            c->embedding_dim = (uint32_t)jnum(task, "e");
        }
    }
}

static void free_fixture(fixture *f)
{
    json_decref(f->config);
    enn_safetensors_free(f->st);
}

/* A fixture tensor as floats (F64 -> F32) or uint32 (I32). */
static void *tensor_as(const fixture *f, const char *name, size_t *count, int as_u32)
{
    const enn_st_tensor *t = enn_safetensors_find(f->st, name);
    if (!t) return NULL;
    size_t n = enn_st_elements(t);
    void *out = malloc(n ? n * 4 : 4);
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == ENN_ST_F64) {
            double v;
            memcpy(&v, (const char *)t->data + i * 8, 8);
            if (as_u32) ((uint32_t *)out)[i] = (uint32_t)v;
            else ((float *)out)[i] = (float)v;
        } else {
            int32_t v;
            memcpy(&v, (const char *)t->data + i * 4, 4);
            if (as_u32) ((uint32_t *)out)[i] = (uint32_t)v;
            else ((float *)out)[i] = (float)v;
        }
    }
    if (count) *count = n;
    return out;
}

/* Compares a model tensor with the fixture's: max |device - reference| against the
 * reference's largest magnitude. fp32 through a 5-step recurrence with layer norms
 * (which divide by standard deviations of 6 numbers) loses a few more digits than one
 * kernel: 3e-4 of the tensor's scale is well below any real error (a wrong sign or a
 * missing term moves a gradient by its own size) and above what fp32 rounding leaves. */
static void expect_close(enn_model *model, const fixture *f, const char *model_name, const char *fixture_name)
{
    const enn_st_tensor *t = enn_safetensors_find(f->st, fixture_name);
    cr_assert_not_null(t, "fixture lacks %s", fixture_name);
    size_t n = enn_st_elements(t);
    float *got = malloc(n * sizeof *got);
    ENN_ASSERT_OK(enn_model_read(model, model_name, got, n));
    double scale = 0, err = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double ref;
        memcpy(&ref, (const char *)t->data + i * 8, 8);
        scale = fmax(scale, fabs(ref));
        if (fabs(got[i] - ref) > err) {
            err = fabs(got[i] - ref);
            worst = i;
        }
    }
    double ref_worst;
    memcpy(&ref_worst, (const char *)t->data + worst * 8, 8);
    cr_expect(err <= 3e-4 * scale + 1e-6, "%s: max error %.3g at [%zu] (device %.7g, reference %.7g), scale %.3g",
              fixture_name, err, worst, got[worst], ref_worst, scale);
    free(got);
}

static void run_fixture(const char *name)
{
    fixture f;
    load_fixture(name, &f);
    enn_context *ctx = test_context();
    enn_model *model = NULL;
    ENN_ASSERT_OK(enn_model_create(ctx, &f.model, &model));

    /* The fixture's parameters replace the model's own initialisation. */
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(model, i, &d));
        char key[96];
        snprintf(key, sizeof key, "param.%s", d.name);
        size_t n;
        float *p = tensor_as(&f, key, &n, 0);
        cr_assert_not_null(p, "fixture lacks %s", key);
        ENN_ASSERT_OK(enn_model_write(model, d.name, p, n));
        free(p);
    }
    enn_batch batch = {.size = f.B, .seq_len = f.T};
    float *x = tensor_as(&f, "input.x", NULL, 0), *y = NULL;
    uint32_t *labels = tensor_as(&f, "input.labels", NULL, 1), *tokens = tensor_as(&f, "input.tokens", NULL, 1);
    uint32_t *targets = NULL;
    if (f.model.head == ENN_HEAD_REGRESSOR) y = tensor_as(&f, "input.targets", NULL, 0);
    else targets = tensor_as(&f, "input.targets", NULL, 1);
    batch.x = x;
    batch.y = y;
    batch.labels = labels;
    batch.tokens = tokens;
    batch.targets = targets;
    float *h0 = tensor_as(&f, "input.h0", NULL, 0), *H0 = tensor_as(&f, "input.H0", NULL, 0);
    float *xi = tensor_as(&f, "input.xi", NULL, 0), *keep = tensor_as(&f, "input.keep_mask", NULL, 0);
    enn_forward_inputs in = {.h0 = h0, .H0 = H0, .noise = xi, .keep_mask = keep, .no_dropout = keep == NULL};
    enn_step_result r;
    ENN_ASSERT_OK(enn_model_compute_gradients(model, &batch, &in, &r));

    const enn_st_tensor *loss = enn_safetensors_find(f.st, "out.loss");
    double ref_loss;
    memcpy(&ref_loss, loss->data, 8);
    cr_expect(fabs(r.loss - ref_loss) <= 1e-4 * fabs(ref_loss) + 1e-6, "%s: loss %.7g, reference %.7g", name, r.loss,
              ref_loss);
    int baseline = f.model.kind != ENN_MODEL_ENN;
    expect_close(model, &f, "out.hs", "out.hs");
    if (!baseline) {
        expect_close(model, &f, "out.a", "out.a");
        expect_close(model, &f, "out.H_T", "out.H_T");
    }
    if (f.model.head != ENN_HEAD_LANGUAGE_MODEL) expect_close(model, &f, "out.logits", "out.logits");
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(model, i, &d));
        char key[96];
        snprintf(key, sizeof key, "grad.%s", d.name);
        expect_close(model, &f, key, key);
    }
    if (!baseline) expect_close(model, &f, "grad.input.h0", "grad.input.h0");
    if (!baseline && f.model.cell.trace_gradient == ENN_TRACE_GRADIENT_EXACT) expect_close(model, &f, "grad.input.H0", "grad.input.H0");
    if (enn_safetensors_find(f.st, "grad.input.x")) expect_close(model, &f, "grad.input.x", "grad.input.x");

    free(x); free(y); free(labels); free(tokens); free(targets); free(h0); free(H0); free(xi); free(keep);
    enn_model_destroy(model);
    test_context_finish(ctx);
    free_fixture(&f);
}

#define FIXTURE(name) Test(model_fixtures, name) { run_fixture(#name); }
FIXTURE(cls_ln1_shared_exact_attention)
FIXTURE(cls_ln1_shared_exact_last)
FIXTURE(cls_ln1_shared_stop_attention)
FIXTURE(cls_ln1_shared_stop_last)
FIXTURE(cls_ln1_per_sample_exact_attention)
FIXTURE(cls_ln1_per_sample_exact_last)
FIXTURE(cls_ln1_per_sample_stop_attention)
FIXTURE(cls_ln1_per_sample_stop_last)
FIXTURE(cls_ln0_shared_exact_attention)
FIXTURE(cls_ln0_shared_exact_last)
FIXTURE(cls_ln0_shared_stop_attention)
FIXTURE(cls_ln0_shared_stop_last)
FIXTURE(cls_ln0_per_sample_exact_attention)
FIXTURE(cls_ln0_per_sample_exact_last)
FIXTURE(cls_ln0_per_sample_stop_attention)
FIXTURE(cls_ln0_per_sample_stop_last)
FIXTURE(cls_clip_shared_exact_attention)
FIXTURE(cls_clip_per_sample_exact_last)
FIXTURE(cls_clip_shared_stop_attention)
FIXTURE(reg_last)
FIXTURE(reg_sequence)
FIXTURE(lm_embedding)
FIXTURE(lm_embedding_per_sample_stop)
FIXTURE(lm_float)
FIXTURE(base_rnn_cls_last)
FIXTURE(base_rnn_lm_embedding)
FIXTURE(base_gru_cls_last)
FIXTURE(base_gru_lm_embedding)
FIXTURE(base_lstm_cls_last)
FIXTURE(base_lstm_lm_embedding)
FIXTURE(base_lstm_cls_attention)
