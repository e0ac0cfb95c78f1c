/* Model configuration: the spec's defaults, validation, and the parameter layout each
 * configuration implies (the layout is also what the parameter count comes from). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/struct_size.h"
#include "models/config.h"

void enn_model_config_init(enn_model_config *c, enn_head_kind head)
{
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->struct_size = sizeof *c;
    c->kind = ENN_MODEL_ENN;
    c->layers = 1;
    c->layer_units[0] = 128;
    c->max_batch = 128;
    c->cell = (enn_cell_config){
        .hidden = 128, .memory_slots = 64, .hebbian_rate = 0.05f, .trace_scale = 0.5f, .temperature = 1.5f,
        .sparsity = 0.1f, .layer_norm = 1, .noise = 1, .noise_std = 0.001f,
        .trace_mode = ENN_TRACE_SHARED, .trace_gradient = ENN_TRACE_GRADIENT_EXACT, .stateful = 0,
    };
    c->head = head;
    c->pooling = ENN_POOL_ATTENTION;
    c->dropout = head == ENN_HEAD_CLASSIFIER ? 0.3f : 0.0f;
    c->lm_input = ENN_LM_EMBEDDING;
    c->embedding_dim = 128;
    c->optimizer = (enn_optimizer_config){.learning_rate = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f,
                                          .epsilon = 1e-7f, .weight_decay = 0.0f,
                                          .clip = ENN_CLIP_PER_TENSOR, .clip_norm = 1.0f};
    c->seed = 1;
}

#define REQUIRE(cond, ...)                                                   \
    do {                                                                     \
        if (!(cond)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, __VA_ARGS__); \
    } while (0)

enn_status enn_model_config_read(const enn_model_config *caller, enn_model_config *local)
{
    REQUIRE(caller, "model config is NULL");
    return ENN_STRUCT_READ("enn_model_config", ENN_MODEL_CONFIG_SIZE_0_2, caller, local);
}

/* The checks on a configuration libenn has read (enn_model_config_read). */
static enn_status check_fields(const enn_model_config *c)
{
    REQUIRE(c->kind <= ENN_MODEL_LSTM, "model kind %d is not enn, rnn, gru or lstm", (int)c->kind);
    REQUIRE(c->head <= ENN_HEAD_LANGUAGE_MODEL, "head %d is not classifier, regressor or language model", (int)c->head);
    REQUIRE(c->pooling <= ENN_POOL_LAST, "pooling %d is not attention or last", (int)c->pooling);
    REQUIRE(c->lm_input <= ENN_LM_FLOAT_FEATURE, "lm_input %d is not embedding or float", (int)c->lm_input);
    REQUIRE(c->return_sequences == 0 || c->return_sequences == 1, "return_sequences %d is not 0 or 1",
            c->return_sequences);
    REQUIRE(!c->return_sequences || c->head == ENN_HEAD_REGRESSOR,
            "return_sequences is for a regressor (a classifier pools the steps, a language model predicts at each)");
    REQUIRE(c->cell.stateful == 0 || c->cell.stateful == 1, "stateful %d is not 0 or 1", c->cell.stateful);
    REQUIRE(c->layers <= ENN_MAX_LAYERS, "layers must be at most %d, not %u", ENN_MAX_LAYERS, c->layers);
    /* Sizes stay far enough from 2^32 that 3h, 4u and the like never wrap. */
    const uint32_t dims[] = {c->max_seq_len, c->max_batch, c->outputs, c->input_features, c->embedding_dim,
                             c->cell.hidden, c->cell.memory_slots};
    const char *const dim_names[] = {"max_seq_len", "max_batch", "outputs", "input_features", "embedding_dim",
                                     "hidden", "memory_slots"};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++)
        REQUIRE(dims[i] <= ENN_MAX_DIMENSION, "%s %u is above the limit of %u", dim_names[i], dims[i],
                ENN_MAX_DIMENSION);
    for (uint32_t i = 0; i < c->layers; i++)
        REQUIRE(c->layer_units[i] <= ENN_MAX_DIMENSION, "layer %u has %u units, above the limit of %u", i,
                c->layer_units[i], ENN_MAX_DIMENSION);
    REQUIRE(c->max_seq_len > 0, "max_seq_len must be positive");
    REQUIRE(c->max_batch > 0, "max_batch must be positive");
    REQUIRE(c->outputs > 0, "outputs (classes, regression outputs or vocabulary) must be positive");
    REQUIRE(!(c->head == ENN_HEAD_CLASSIFIER && c->outputs < 2), "a classifier needs at least 2 classes, not %u", c->outputs);
    int embedded = c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_EMBEDDING;
    REQUIRE(embedded || c->input_features > 0, "input_features must be positive");
    REQUIRE(!(c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_FLOAT_FEATURE && c->input_features != 1),
            "the language model's float-feature input has input_features = 1, not %u", c->input_features);
    REQUIRE(!embedded || c->embedding_dim > 0, "embedding_dim must be positive");
    REQUIRE(c->dropout >= 0.0f && c->dropout < 1.0f, "dropout %g is outside [0, 1)", c->dropout);
    const enn_optimizer_config *o = &c->optimizer;
    REQUIRE(o->learning_rate > 0.0f && isfinite(o->learning_rate), "learning_rate %g must be positive and finite",
            o->learning_rate);
    REQUIRE(o->beta1 >= 0.0f && o->beta1 < 1.0f && o->beta2 >= 0.0f && o->beta2 < 1.0f,
            "Adam betas (%g, %g) must lie in [0, 1)", o->beta1, o->beta2);
    REQUIRE(o->epsilon > 0.0f && isfinite(o->epsilon), "Adam epsilon %g must be positive and finite", o->epsilon);
    REQUIRE(o->weight_decay >= 0.0f && isfinite(o->weight_decay), "weight_decay %g must be finite and not negative",
            o->weight_decay);
    REQUIRE(o->clip <= ENN_CLIP_GLOBAL, "clip mode %d is unknown", (int)o->clip);
    REQUIRE(isfinite(o->clip_norm) && (o->clip == ENN_CLIP_NONE || o->clip_norm > 0.0f),
            "clip_norm %g must be finite, and positive when clipping", o->clip_norm);
    if (c->kind == ENN_MODEL_ENN) {
        const enn_cell_config *e = &c->cell;
        REQUIRE(e->hidden > 0 && e->memory_slots > 0, "hidden size and memory slots must be positive");
        REQUIRE(e->hebbian_rate >= 0.0f && e->hebbian_rate <= 1.0f, "hebbian_rate %g is outside [0, 1]", e->hebbian_rate);
        REQUIRE(isfinite(e->trace_scale), "trace_scale %g must be finite", e->trace_scale);
        REQUIRE(e->temperature > 0.0f && isfinite(e->temperature), "temperature %g must be positive and finite",
                e->temperature);
        REQUIRE(e->sparsity >= 0.0f && isfinite(e->sparsity), "sparsity %g must be finite and not negative",
                e->sparsity);
        REQUIRE(e->noise_std >= 0.0f && isfinite(e->noise_std), "noise_std %g must be finite and not negative",
                e->noise_std);
        REQUIRE((e->layer_norm == 0 || e->layer_norm == 1) && (e->noise == 0 || e->noise == 1),
                "layer_norm and noise are 0 or 1, not %d and %d", e->layer_norm, e->noise);
        REQUIRE(e->trace_mode <= ENN_TRACE_PER_SAMPLE, "trace_mode %d is unknown", (int)e->trace_mode);
        REQUIRE(e->trace_gradient <= ENN_TRACE_GRADIENT_STOP, "trace_gradient %d is unknown", (int)e->trace_gradient);
        REQUIRE(e->recompute_interval != 1, "recompute_interval 1 stores every trace twice: use 0 (store all) or >= 2");
    } else {
        REQUIRE(c->layers >= 1 && c->layers <= ENN_MAX_LAYERS, "layers must be 1..%d, not %u", ENN_MAX_LAYERS, c->layers);
        for (uint32_t i = 0; i < c->layers; i++) REQUIRE(c->layer_units[i] > 0, "layer %u has no units", i);
    }
    return ENN_OK;
}

enn_status enn_model_config_check(const enn_model_config *caller)
{
    enn_model_config c;
    ENN_TRY(enn_model_config_read(caller, &c));
    return check_fields(&c);
}

/* The size of the feature the recurrent part hands to the head. */
static uint32_t feature_size(const enn_model_config *c)
{
    return c->kind == ENN_MODEL_ENN ? c->cell.hidden : c->layer_units[c->layers - 1];
}

static enn_status recurrent_layout(const enn_model_config *c, uint32_t d, enn_layout *l)
{
    if (c->kind == ENN_MODEL_ENN) {
        uint32_t h = c->cell.hidden, n = c->cell.memory_slots;
        ENN_TRY(enn_layout_add(l, "W_z", d, h, ENN_INIT_HE_NORMAL));
        ENN_TRY(enn_layout_add(l, "b_z", h, 0, ENN_INIT_ZEROS));
        ENN_TRY(enn_layout_add(l, "M", n, h, ENN_INIT_GLOROT_UNIFORM));
        ENN_TRY(enn_layout_add(l, "W_u", 3 * h, 3 * h, ENN_INIT_HE_NORMAL));
        ENN_TRY(enn_layout_add(l, "b_u", 3 * h, 0, ENN_INIT_ZEROS));
        ENN_TRY(enn_layout_add(l, "W_o", 3 * h, h, ENN_INIT_HE_NORMAL));
        ENN_TRY(enn_layout_add(l, "b_o", h, 0, ENN_INIT_ZEROS));
        if (c->cell.layer_norm) {
            ENN_TRY(enn_layout_add(l, "ln1.gain", h, 0, ENN_INIT_ONES));
            ENN_TRY(enn_layout_add(l, "ln1.bias", h, 0, ENN_INIT_ZEROS));
            ENN_TRY(enn_layout_add(l, "ln2.gain", h, 0, ENN_INIT_ONES));
            ENN_TRY(enn_layout_add(l, "ln2.bias", h, 0, ENN_INIT_ZEROS));
        }
        return ENN_OK;
    }
    /* Baselines: per layer an input kernel, a recurrent kernel and biases, gates packed
     * along the output axis in Keras's order (LSTM i,f,c,o; GRU z,r,h). */
    uint32_t gates = c->kind == ENN_MODEL_RNN ? 1 : c->kind == ENN_MODEL_GRU ? 3 : 4;
    uint32_t in = d;
    for (uint32_t i = 0; i < c->layers; i++) {
        uint32_t u = c->layer_units[i];
        char name[ENN_TENSOR_NAME];
        snprintf(name, sizeof name, "layer%u.kernel", i);
        ENN_TRY(enn_layout_add(l, name, in, gates * u, ENN_INIT_GLOROT_UNIFORM));
        snprintf(name, sizeof name, "layer%u.recurrent_kernel", i);
        ENN_TRY(enn_layout_add(l, name, u, gates * u, ENN_INIT_ORTHOGONAL));
        snprintf(name, sizeof name, "layer%u.bias", i);
        /* GRU reset_after keeps two bias vectors (input and recurrent). */
        if (c->kind == ENN_MODEL_GRU) ENN_TRY(enn_layout_add(l, name, 2, gates * u, ENN_INIT_ZEROS));
        else
            ENN_TRY(enn_layout_add(l, name, gates * u, 0,
                                   c->kind == ENN_MODEL_LSTM ? ENN_INIT_LSTM_BIAS : ENN_INIT_ZEROS));
        in = u;
    }
    return ENN_OK;
}

enn_status enn_model_layout(const enn_model_config *c, enn_layout *l)
{
    ENN_TRY(check_fields(c));
    memset(l, 0, sizeof *l);
    uint32_t d = c->input_features;
    if (c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_EMBEDDING) {
        ENN_TRY(enn_layout_add(l, "embedding.table", c->outputs, c->embedding_dim, ENN_INIT_UNIFORM_EMBEDDING));
        d = c->embedding_dim;
    }
    ENN_TRY(recurrent_layout(c, d, l));
    uint32_t f = feature_size(c);
    if (c->head == ENN_HEAD_CLASSIFIER && c->pooling == ENN_POOL_ATTENTION) {
        ENN_TRY(enn_layout_add(l, "pool.w", f, 0, ENN_INIT_GLOROT_UNIFORM));
        ENN_TRY(enn_layout_add(l, "pool.b", 1, 0, ENN_INIT_ZEROS));
    }
    ENN_TRY(enn_layout_add(l, "out.W", f, c->outputs, ENN_INIT_GLOROT_UNIFORM));
    ENN_TRY(enn_layout_add(l, "out.b", c->outputs, 0, ENN_INIT_ZEROS));
    return ENN_OK;
}

enn_status enn_model_parameter_count(const enn_model_config *caller, uint64_t *trainable, uint64_t *reference)
{
    enn_model_config c;
    ENN_TRY(enn_model_config_read(caller, &c));
    enn_layout l;
    ENN_TRY(enn_model_layout(&c, &l));
    if (trainable) *trainable = l.elements;
    /* The reference package also counts a non-trainable initial-trace weight [N, h]. */
    if (reference)
        *reference = l.elements + (c.kind == ENN_MODEL_ENN ? (uint64_t)c.cell.memory_slots * c.cell.hidden : 0);
    return ENN_OK;
}
