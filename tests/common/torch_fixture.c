/* The PyTorch fixtures: configuration and tensors (moved from test_model_fixtures.c). */
#include "torch_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "harness.h"

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

void torch_fixture_load(const char *name, torch_fixture *f)
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

void torch_fixture_free(torch_fixture *f)
{
    json_decref(f->config);
    enn_safetensors_free(f->st);
}

void *torch_fixture_tensor(const torch_fixture *f, const char *name, size_t *count, int as_u32)
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

