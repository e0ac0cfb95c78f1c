/* The model and one training step, from the public API to the recorded dispatches:
 *
 *   enn_model_train_step
 *     upload the batch (time-major, padded to Bp rows)        stage_batch
 *     record:  initial state h0, H0 (baselines: h0, c0 = 0)      record_initial_state
 *              zero the gradients
 *              enn_cell_forward      (models/enn_cell.c), or for a baseline
 *              enn_rnn_forward       (models/rnn_layers.c)
 *              enn_head_forward      (models/heads.c: loss, reading m->seq)
 *              enn_head_backward, enn_cell_backward / enn_rnn_backward
 *              enn_adam_update       (ops/adam.c: clipnorm, Adam)
 *     one submission, one wait; read the loss statistics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "models/config.h"
#include "models/init.h"
#include "models/model.h"
#include "ops/adam.h"
#include "ops/embedding.h"
#include "ops/random.h"

/* Streams of the initial state draws, apart from noise and dropout streams. */
#define STATE_STREAM(pass, which) (((uint64_t)(pass) << 20) + 0xe0000u + (which))
#define INITIAL_STATE_STD 0.01f

static enn_view tensor_at(const enn_model *m, const enn_buffer *buf, const char *name)
{
    const enn_tensor_info *t = enn_layout_find(&m->layout, name);
    return t ? enn_view_at(buf, t->offset) : (enn_view){0};
}

static uint32_t trace_copies(const enn_model *m, uint32_t B) { return m->cell.per_sample ? B : 1; }

void enn_model_destroy(enn_model *m)
{
    if (!m) return;
    enn_recorder_destroy(m->rec);
    enn_head_destroy(m);
    enn_cell_destroy(&m->cell);
    enn_rnn_stack_destroy(&m->rnn);
    if (m->table) enn_param_table_destroy(m->ctx, m->table);
    enn_buffer_destroy(m->ctx, m->params);
    enn_buffer_destroy(m->ctx, m->grads);
    enn_buffer_destroy(m->ctx, m->adam_m);
    enn_buffer_destroy(m->ctx, m->adam_v);
    free(m->host);
    free(m);
}

/* `what` names the buffer in a failure's message (out of device memory: which one). */
static enn_status zeroed_buffer(enn_model *m, const char *what, enn_buffer **out)
{
    enn_status made = enn_buffer_create(m->ctx, m->layout.bytes, out);
    if (made != ENN_OK)
        return enn_error(made, "the model's %s (%zu bytes): %s", what, (size_t)m->layout.bytes, enn_last_error());
    float *zero = calloc(1, m->layout.bytes);
    if (!zero) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "zeroing model buffers");
    enn_status s = enn_buffer_upload(m->ctx, *out, 0, zero, m->layout.bytes);
    free(zero);
    return s;
}

static enn_status model_build(enn_model *m)
{
    const enn_model_config *c = &m->config;
    m->baseline = c->kind != ENN_MODEL_ENN;
    ENN_TRY(enn_model_layout(c, &m->layout));
    int embedded = c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_EMBEDDING;
    m->features = embedded ? c->embedding_dim : c->input_features;
    ENN_TRY(zeroed_buffer(m, "parameters", &m->params));
    ENN_TRY(zeroed_buffer(m, "gradients", &m->grads));
    ENN_TRY(zeroed_buffer(m, "Adam first moments", &m->adam_m));
    ENN_TRY(zeroed_buffer(m, "Adam second moments", &m->adam_v));

    float *host = malloc(m->layout.bytes);
    if (!host) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "initialising parameters");
    enn_status s = enn_init_parameters(&m->layout, c->seed, host);
    if (s == ENN_OK) s = enn_buffer_upload(m->ctx, m->params, 0, host, m->layout.bytes);
    free(host);
    ENN_TRY(s);

    enn_param_range ranges[ENN_MAX_TENSORS];
    for (uint32_t i = 0; i < m->layout.count; i++)
        ranges[i] = (enn_param_range){(uint32_t)(m->layout.tensors[i].offset / 4), (uint32_t)m->layout.tensors[i].count,
                                      ENN_PARAM_DECAY};
    ENN_TRY(enn_param_table_create(m->ctx, ranges, m->layout.count, &m->table));
    if (m->baseline) {
        ENN_TRY(enn_rnn_stack_create(m->ctx, c, &m->layout, m->params, m->grads, m->features, &m->rnn));
        const enn_rnn_layer *top = enn_rnn_top(&m->rnn);
        m->seq = (enn_sequence_output){top->hs, top->dhs, top->units, m->rnn.Bp};
        m->x = m->rnn.x;
        m->dx = m->rnn.dx;
    } else {
        ENN_TRY(enn_cell_create(m->ctx, c, &m->layout, m->params, m->grads, m->features, &m->cell));
        m->seq = (enn_sequence_output){m->cell.hs, m->cell.dhs, m->cell.h, m->cell.Bp};
        m->x = m->cell.x;
        m->dx = m->cell.dx;
    }
    ENN_TRY(enn_head_create(m));
    return enn_recorder_create(m->ctx, &m->rec);
}

enn_status enn_model_create(enn_context *ctx, const enn_model_config *config, enn_model **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_create: out is NULL");
    *out = NULL;
    if (!ctx || !config) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_create: NULL argument");
    enn_model_config local;
    ENN_TRY(enn_model_config_read(config, &local));
    ENN_TRY(enn_model_config_check(&local));   /* the copy's struct_size is sizeof, as get_config hands out */
    enn_model *m = calloc(1, sizeof *m);
    if (!m) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating the model");
    m->ctx = ctx;
    m->config = local;
    enn_status s = model_build(m);
    if (s != ENN_OK) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", enn_last_error());
        enn_model_destroy(m);
        return enn_error(s, "%s", saved);
    }
    *out = m;
    return ENN_OK;
}

const enn_model_config *enn_model_get_config(const enn_model *m) { return m ? &m->config : NULL; }

float *enn_model_host_floats(enn_model *m, size_t n)
{
    if (n > m->host_floats) {
        float *p = realloc(m->host, n * sizeof *p);
        if (!p) return NULL;
        m->host = p;
        m->host_floats = n;
    }
    return m->host;
}

static enn_status check_batch(const enn_model *m, const enn_batch *b)
{
    if (!b) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the batch is NULL");
    if (!b->size || b->size > m->config.max_batch)
        return enn_error(ENN_ERROR_SHAPE, "a batch of %u samples; the model takes 1..%u", b->size, m->config.max_batch);
    if (!b->seq_len || b->seq_len > m->config.max_seq_len)
        return enn_error(ENN_ERROR_SHAPE, "sequences of %u steps; the model takes 1..%u", b->seq_len,
                         m->config.max_seq_len);
    const enn_model_config *c = &m->config;
    int embedded = c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_EMBEDDING;
    int float_tokens = c->head == ENN_HEAD_LANGUAGE_MODEL && !embedded;
    if (!embedded && (float_tokens ? !b->tokens : !b->x))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the batch has no %s", float_tokens ? "tokens" : "inputs (x)");
    /* A NaN or infinity would train every parameter it reaches into NaN. */
    if (!embedded && !float_tokens) {
        size_t n = (size_t)b->size * b->seq_len * m->features;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(b->x[i]))
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "x of sample %zu, step %zu, feature %zu is %g: inputs "
                                 "must be finite", i / ((size_t)b->seq_len * m->features),
                                 i / m->features % b->seq_len, i % m->features, b->x[i]);
    }
    return enn_head_check_batch(m, b);
}

/* The batch's inputs into the recurrent part's time-major, padded x (and the head's targets). */
static enn_status stage_batch(enn_model *m, const enn_batch *b)
{
    const enn_model_config *c = &m->config;
    uint32_t B = b->size, T = b->seq_len, Bp = m->seq.Bp, d = m->features;
    ENN_TRY(enn_head_upload(m, b));
    if (c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_EMBEDDING) return ENN_OK;
    int float_tokens = c->head == ENN_HEAD_LANGUAGE_MODEL;
    size_t n = (size_t)T * Bp * d;
    float *x = enn_model_host_floats(m, n);
    if (!x) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "staging inputs");
    memset(x, 0, n * sizeof *x);
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t s = 0; s < B; s++)
            for (uint32_t k = 0; k < d; k++)
                x[((size_t)t * Bp + s) * d + k] =
                    float_tokens ? (float)b->tokens[(size_t)s * T + t] : b->x[((size_t)s * T + t) * d + k];
    return enn_record_upload(m->rec, m->x, 0, x, n * sizeof *x);
}

/* Overrides from enn_forward_inputs, uploaded before recording. */
static enn_status stage_overrides(enn_model *m, uint32_t T, uint32_t B, const enn_forward_inputs *in)
{
    enn_cell *c = &m->cell;
    c->noise_buffer_set = 0;
    if (!in) return ENN_OK;
    if (in->keep_mask && m->head.keep_mask)
        ENN_TRY(enn_buffer_upload(m->ctx, m->head.keep_mask, 0, in->keep_mask, (size_t)B * m->seq.f * 4));
    if (m->baseline) {
        if (in->h0 || in->H0 || in->noise)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "a baseline starts from zero state and has no trace: "
                             "h0, H0 and noise must be NULL");
        return ENN_OK;
    }
    uint64_t trace = (uint64_t)trace_copies(m, B) * c->N * c->h * 4;
    if (in->h0) ENN_TRY(enn_buffer_upload(m->ctx, c->hs, 0, in->h0, (size_t)B * c->h * 4));
    if (in->H0) ENN_TRY(enn_buffer_upload(m->ctx, c->H, 0, in->H0, trace));
    if (in->noise) {
        if (!c->noise_buf) ENN_TRY(enn_buffer_create(m->ctx, (uint64_t)c->T * enn_cell_trace_slab(c), &c->noise_buf));
        for (uint32_t t = 0; t < T; t++)
            ENN_TRY(enn_buffer_upload(m->ctx, c->noise_buf, t * enn_cell_trace_slab(c),
                                      (const char *)in->noise + t * trace, trace));
        c->noise_buffer_set = 1;
    }
    return ENN_OK;
}

/* h_0 and H_0: carried (stateful), given (uploaded by stage_overrides), drawn
 * (training: Normal(0, 0.01^2) as the reference resets them for every batch) or zero
 * (evaluation, so that it is deterministic). */
static enn_status record_initial_state(enn_model *m, uint32_t B, int training, const enn_forward_inputs *in)
{
    /* Baselines: zero (Keras's default) or carried, in training and evaluation alike. */
    if (m->baseline)
        return enn_rnn_initial_state(&m->rnn, m->rec, m->config.cell.stateful && m->have_state ? m->last_T : 0);
    enn_cell *c = &m->cell;
    enn_recorder *rec = m->rec;
    uint64_t sh = enn_cell_row_slab(c, c->h), str = enn_cell_trace_slab(c);
    if (m->config.cell.stateful && m->have_state) {
        /* A given h0 / H0 (enn grad on a stateful checkpoint) wins over the carried one. */
        /* last_T == 0: the state was written into slab 0 (enn_model_write "state.*"). */
        if (m->last_T && !(in && in->h0)) ENN_TRY(enn_record_copy(rec, c->hs, (uint64_t)m->last_T * sh, c->hs, 0, sh));
        if (m->last_T && !(in && in->H0)) {
            enn_view last = enn_cell_trace(c, m->last_T, m->last_T);
            ENN_TRY(enn_record_copy(rec, last.buf, last.offset, c->H, 0, str));
        }
        return ENN_OK;
    }
    if (!(in && in->h0)) {
        ENN_TRY(enn_record_fill(rec, c->hs, 0, sh, 0));
        if (training)
            ENN_TRY(enn_random_normal(rec, enn_view_of(c->hs), B * c->h, m->config.seed, STATE_STREAM(m->passes, 0), 0,
                                      0.0f, INITIAL_STATE_STD));
    }
    if (!(in && in->H0)) {
        ENN_TRY(enn_record_fill(rec, c->H, 0, str, 0));
        if (training)
            ENN_TRY(enn_random_normal(rec, enn_view_of(c->H), trace_copies(m, B) * c->N * c->h, m->config.seed,
                                      STATE_STREAM(m->passes, 1), 0, 0.0f, INITIAL_STATE_STD));
    }
    return ENN_OK;
}

typedef enum pass_kind { PASS_TRAIN, PASS_GRADIENTS, PASS_EVALUATE } pass_kind;

/* Records and runs one forward (and backward, and update) pass. */
static enn_status record_and_run(enn_model *m, const enn_batch *b, const enn_forward_inputs *in, pass_kind kind,
                                 enn_step_result *result)
{
    ENN_TRY(check_batch(m, b));
    const enn_model_config *c = &m->config;
    uint32_t T = b->seq_len, B = b->size;
    int training = kind != PASS_EVALUATE;
    int embedded = c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_EMBEDDING;
    ENN_TRY(stage_overrides(m, T, B, in));
    enn_recorder *rec = m->rec;
    ENN_TRY(enn_recorder_begin(rec));
    /* The batch goes in with the step's own commands: no submission of its own. */
    ENN_TRY(stage_batch(m, b));
    ENN_TRY(record_initial_state(m, B, training, in));
    uint32_t Bp = m->seq.Bp;
    if (embedded)
        ENN_TRY(enn_embedding_forward(rec, T * Bp, c->embedding_dim, c->outputs,
                                      tensor_at(m, m->params, "embedding.table"), enn_view_of(m->head.tokens),
                                      enn_view_of(m->x)));
    if (training) ENN_TRY(enn_record_fill(rec, m->grads, 0, 0, 0));
    if (m->baseline) {
        ENN_TRY(enn_rnn_forward(&m->rnn, rec, T, B));
    } else {
        /* Evaluation is deterministic: no trace noise. */
        int noise = m->cell.noise;
        if (!training) m->cell.noise = 0;
        enn_status s = enn_cell_forward(&m->cell, rec, T, B, m->passes);
        m->cell.noise = noise;
        ENN_TRY(s);
    }
    ENN_TRY(enn_head_forward(m, rec, T, B, training, in));
    if (training) {
        ENN_TRY(enn_head_backward(m, rec, T, B, 1, in));
        int want_dx = embedded || kind == PASS_GRADIENTS;
        if (m->baseline) ENN_TRY(enn_rnn_backward(&m->rnn, rec, T, B, want_dx));
        else ENN_TRY(enn_cell_backward(&m->cell, rec, T, B, m->passes, want_dx));
        if (embedded)
            ENN_TRY(enn_embedding_backward(rec, T * Bp, c->embedding_dim, c->outputs, enn_view_of(m->head.tokens),
                                           enn_view_of(m->dx), enn_view_of(m->head.embedding_ws),
                                           tensor_at(m, m->grads, "embedding.table")));
    }
    if (kind == PASS_TRAIN) ENN_TRY(enn_model_record_update(m, rec));
    /* The loss statistics come back with the step too. */
    ENN_TRY(enn_head_record_result(m, rec, T));
    ENN_TRY(enn_recorder_run(rec));
    if (kind == PASS_TRAIN) m->step++;
    if (training) m->gradients_pending = kind == PASS_GRADIENTS;
    m->passes++;
    m->last_T = T;
    m->last_B = B;
    m->have_state = 1;
    enn_step_result r;
    ENN_TRY(enn_head_result(m, T, B, &r));
    if (result) *result = r;
    return ENN_OK;
}

enn_status enn_model_record_update(enn_model *m, enn_recorder *rec)
{
    enn_adam_params hp = enn_adam_params_from_config(&m->config.optimizer, m->step + 1);
    return enn_adam_update(rec, m->table, &hp, enn_view_of(m->params), enn_view_of(m->grads), enn_view_of(m->adam_m),
                           enn_view_of(m->adam_v));
}

/* One pass; a failure while recording drops the recording so that the next pass can run. */
static enn_status run_pass(enn_model *m, const enn_batch *b, const enn_forward_inputs *in, pass_kind kind,
                           enn_step_result *result)
{
    enn_status s = record_and_run(m, b, in, kind, result);
    if (s != ENN_OK) enn_recorder_abort(m->rec);
    return s;
}

enn_status enn_model_train_step(enn_model *m, const enn_batch *b, enn_step_result *result)
{
    if (!m) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_train_step: model is NULL");
    return run_pass(m, b, NULL, PASS_TRAIN, result);
}

enn_status enn_model_compute_gradients(enn_model *m, const enn_batch *b, const enn_forward_inputs *in,
                                       enn_step_result *result)
{
    if (!m) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_compute_gradients: model is NULL");
    return run_pass(m, b, in, PASS_GRADIENTS, result);
}

enn_status enn_model_evaluate(enn_model *m, const enn_batch *b, enn_step_result *result, float *outputs)
{
    if (!m) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_evaluate: model is NULL");
    /* Refused before the pass, which would move the carried state and the pass count (a
     * batch of another shape is the pass's own check to refuse). */
    if (outputs && b && b->seq_len && b->seq_len <= m->config.max_seq_len)
        ENN_TRY(enn_head_outputs_kept(m, b->seq_len));
    ENN_TRY(run_pass(m, b, NULL, PASS_EVALUATE, result));
    return outputs ? enn_head_outputs(m, b->seq_len, b->size, outputs) : ENN_OK;
}

enn_status enn_model_set_learning_rate(enn_model *m, float lr)
{
    if (!m) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_set_learning_rate: model is NULL");
    if (!(lr > 0.0f) || !isfinite(lr))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "learning rate %g must be positive and finite", lr);
    m->config.optimizer.learning_rate = lr;
    return ENN_OK;
}

float enn_model_learning_rate(const enn_model *m) { return m ? m->config.optimizer.learning_rate : 0.0f; }
uint64_t enn_model_step_count(const enn_model *m) { return m ? m->step : 0; }

uint64_t enn_model_pass_count(const enn_model *m) { return m ? m->passes : 0; }

enn_status enn_model_set_pass_count(enn_model *m, uint64_t passes)
{
    if (!m) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_set_pass_count: model is NULL");
    m->passes = passes;
    return ENN_OK;
}

uint32_t enn_model_parameter_tensors(const enn_model *m) { return m ? m->layout.count : 0; }

enn_status enn_model_parameter_desc(const enn_model *m, uint32_t i, enn_tensor_desc *out)
{
    if (!m || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_parameter_desc: NULL argument");
    if (i >= m->layout.count)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_parameter_desc: no tensor %u (the model has %u)", i,
                         m->layout.count);
    const enn_tensor_info *t = &m->layout.tensors[i];
    *out = (enn_tensor_desc){.name = t->name, .rank = t->rank, .shape = {t->shape[0], t->shape[1]}};
    return ENN_OK;
}

enn_status enn_model_memory(const enn_model *m, uint64_t *parameter_bytes, uint64_t *activation_bytes)
{
    if (!m) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_memory: model is NULL");
    if (parameter_bytes) *parameter_bytes = 4 * m->layout.bytes;
    if (activation_bytes) *activation_bytes = m->cell.activation_bytes + m->rnn.activation_bytes + m->head_bytes;
    return ENN_OK;
}

/* A tensor of the flat buffers by name: "W_z", "grad.W_z", "adam.m.W_z", "adam.v.W_z". */
static int flat_tensor(enn_model *m, const char *name, enn_buffer **buf, const enn_tensor_info **info)
{
    struct { const char *prefix; enn_buffer *buf; } kinds[] = {
        {"grad.", m->grads}, {"adam.m.", m->adam_m}, {"adam.v.", m->adam_v}, {"", m->params}};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        size_t n = strlen(kinds[k].prefix);
        if (strncmp(name, kinds[k].prefix, n)) continue;
        const enn_tensor_info *t = enn_layout_find(&m->layout, name + n);
        if (!t) continue;
        *buf = kinds[k].buf;
        *info = t;
        return 1;
    }
    return 0;
}

static enn_status expect_count(const char *name, size_t want, size_t got)
{
    if (want != got)
        return enn_error(ENN_ERROR_SHAPE, "%s holds %zu floats, not %zu", name, want, got);
    return ENN_OK;
}

/* Gathers `rows` rows of `width` floats from step slabs of a time-major buffer into
 * [B, T, width] (sample-major) or [T, B, width]. */
static enn_status gather_steps(enn_model *m, const enn_buffer *buf, uint32_t first_slab, uint64_t slab, uint32_t T,
                               uint32_t B, uint32_t width, int sample_major, float *dst)
{
    size_t per = (size_t)B * width;
    float *tmp = malloc(per * sizeof *tmp);
    if (!tmp) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "reading a tensor");
    for (uint32_t t = 0; t < T; t++) {
        enn_status s = enn_buffer_download(m->ctx, buf, (first_slab + t) * slab, tmp, per * sizeof *tmp);
        if (s != ENN_OK) { free(tmp); return s; }
        for (uint32_t b = 0; b < B; b++)
            memcpy(sample_major ? dst + ((size_t)b * T + t) * width : dst + ((size_t)t * B + b) * width,
                   tmp + (size_t)b * width, width * sizeof *tmp);
    }
    free(tmp);
    return ENN_OK;
}

/* The carried state of a stateful ENN, "state.h" [max_batch, h] and "state.H" ([N, h],
 * or [max_batch, N, h] per-sample): where it lives (the slab the next batch starts from)
 * and its size. */
static enn_status carried_state(enn_model *m, const char *name, size_t count, enn_buffer **buf, uint64_t *offset,
                                size_t *bytes)
{
    if (m->baseline || !m->config.cell.stateful)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: only a stateful ENN (cell.stateful) carries its state "
                         "between batches; for one pass give h0 and H0 in enn_forward_inputs", name);
    enn_cell *c = &m->cell;
    uint32_t slab = m->have_state ? m->last_T : 0;
    size_t n;
    if (!strcmp(name, "state.h")) {
        n = (size_t)m->config.max_batch * c->h;
        *buf = c->hs;
        *offset = slab * enn_cell_row_slab(c, c->h);
    } else {
        n = (size_t)(c->per_sample ? m->config.max_batch : 1) * c->N * c->h;
        enn_view v = enn_cell_trace(c, slab, slab);  /* H_0 or the last pass's H_T */
        *buf = (enn_buffer *)v.buf;
        *offset = v.offset;
    }
    ENN_TRY(expect_count(name, n, count));
    *bytes = n * 4;
    return ENN_OK;
}

enn_status enn_model_read(enn_model *m, const char *name, float *dst, size_t count)
{
    if (!m || !name || !dst) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_read: NULL argument");
    enn_buffer *buf;
    const enn_tensor_info *t;
    if (flat_tensor(m, name, &buf, &t)) {
        ENN_TRY(expect_count(name, t->count, count));
        return enn_buffer_download(m->ctx, buf, t->offset, dst, count * 4);
    }
    if (!strcmp(name, "state.h") || !strcmp(name, "state.H")) {
        enn_buffer *sb;
        uint64_t off;
        size_t bytes;
        ENN_TRY(carried_state(m, name, count, &sb, &off, &bytes));
        if (!m->have_state) {
            memset(dst, 0, bytes);
            return ENN_OK;
        }
        return enn_buffer_download(m->ctx, sb, off, dst, bytes);
    }
    if (!m->last_T) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no forward pass has run yet", name);
    uint32_t T = m->last_T, B = m->last_B, d = m->features, f = m->seq.f, Bp = m->seq.Bp;
    if (!strcmp(name, "out.hs")) {
        ENN_TRY(expect_count(name, (size_t)T * B * f, count));
        return gather_steps(m, m->seq.hs, 1, enn_view_round((uint64_t)Bp * f * 4), T, B, f, 0, dst);
    }
    if (!strcmp(name, "out.logits")) {
        ENN_TRY(expect_count(name, enn_head_output_count(m, T, B), count));
        return enn_head_outputs(m, T, B, dst);
    }
    if (!strcmp(name, "grad.input.x")) {
        ENN_TRY(expect_count(name, (size_t)B * T * d, count));
        /* dx is [T, Bp, d] with rows packed (not slab-aligned): read it whole. */
        size_t n = (size_t)T * Bp * d;
        float *all = malloc(n * sizeof *all);
        if (!all) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "reading %s", name);
        enn_status s = enn_buffer_download(m->ctx, m->dx, 0, all, n * sizeof *all);
        for (uint32_t tt = 0; s == ENN_OK && tt < T; tt++)
            for (uint32_t b = 0; b < B; b++)
                memcpy(dst + ((size_t)b * T + tt) * d, all + ((size_t)tt * Bp + b) * d, d * sizeof *dst);
        free(all);
        return s;
    }
    if (m->baseline) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the baseline model has no tensor named \"%s\"", name);
    enn_cell *c = &m->cell;
    uint32_t h = c->h, N = c->N;
    size_t trace = (size_t)trace_copies(m, B) * N * h;
    if (!strcmp(name, "out.a")) {
        ENN_TRY(expect_count(name, (size_t)T * B * N, count));
        return gather_steps(m, c->a, 0, enn_view_round((uint64_t)c->Bp * N * 4), T, B, N, 0, dst);
    }
    if (!strcmp(name, "out.H_T")) {
        ENN_TRY(expect_count(name, trace, count));
        enn_view last = enn_cell_trace(c, T, T);
        return enn_buffer_download(m->ctx, last.buf, last.offset, dst, trace * 4);
    }
    if (!strcmp(name, "grad.input.h0")) {
        ENN_TRY(expect_count(name, (size_t)B * h, count));
        return enn_buffer_download(m->ctx, c->dhs, 0, dst, (size_t)B * h * 4);
    }
    if (!strcmp(name, "grad.input.H0")) {
        ENN_TRY(expect_count(name, trace, count));
        return enn_buffer_download(m->ctx, c->dH[0], 0, dst, trace * 4);
    }
    return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the model has no tensor named \"%s\"", name);
}

enn_status enn_model_write(enn_model *m, const char *name, const float *src, size_t count)
{
    if (!m || !name || !src) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_write: NULL argument");
    enn_buffer *buf;
    const enn_tensor_info *t;
    if (!strcmp(name, "state.h") || !strcmp(name, "state.H")) {
        enn_buffer *sb;
        uint64_t off;
        size_t bytes;
        ENN_TRY(carried_state(m, name, count, &sb, &off, &bytes));
        if (!m->have_state) {
            /* The other half of the state starts at zero, as a fresh model's would. */
            enn_cell *c = &m->cell;
            float *zero = calloc(1, enn_cell_trace_slab(c) > enn_cell_row_slab(c, c->h) ? enn_cell_trace_slab(c)
                                                                                        : enn_cell_row_slab(c, c->h));
            if (!zero) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "writing %s", name);
            enn_status s = enn_buffer_upload(m->ctx, c->hs, 0, zero, enn_cell_row_slab(c, c->h));
            if (s == ENN_OK) s = enn_buffer_upload(m->ctx, c->H, 0, zero, enn_cell_trace_slab(c));
            free(zero);
            ENN_TRY(s);
            m->have_state = 1;
            m->last_T = 0;
        }
        return enn_buffer_upload(m->ctx, sb, off, src, bytes);
    }
    if (!flat_tensor(m, name, &buf, &t))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the model has no writable tensor named \"%s\"", name);
    ENN_TRY(expect_count(name, t->count, count));
    ENN_TRY(enn_buffer_upload(m->ctx, buf, t->offset, src, count * 4));
    if (buf == m->grads) m->gradients_pending = 1;
    return ENN_OK;
}
