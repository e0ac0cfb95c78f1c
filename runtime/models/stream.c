/* Streaming inference: see stream.h for the step, enn.h and enn_vulkan.h for the API.
 *
 * Every step records the same commands (the state is updated in place by copies), on
 * one of two recorders: `rec` for host steps (submits and waits), `external` for steps
 * recorded into the caller's command buffer. Two, so that a host step never reuses the
 * descriptor pool of a recording the caller may still submit. */
#include "models/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "enn_vulkan.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/launch.h"
#include "ops/layer_norm.h"
#include "ops/memory_step.h"

#define POOL_LOCAL 64

static const enn_view NO_VIEW = {0};

static int embedded(const enn_model *m)
{
    return m->config.head == ENN_HEAD_LANGUAGE_MODEL && m->config.lm_input == ENN_LM_EMBEDDING;
}
static int attention_pooled(const enn_model *m)
{
    return m->config.head == ENN_HEAD_CLASSIFIER && m->config.pooling == ENN_POOL_ATTENTION;
}
static uint32_t trace_copies(const enn_stream *s) { return s->model->cell.per_sample ? s->B : 1; }
static uint64_t trace_bytes(const enn_stream *s)
{
    return (uint64_t)trace_copies(s) * s->model->cell.N * s->model->cell.h * 4;
}
static uint64_t W_u_block_bytes(const enn_cell *c) { return (uint64_t)c->h * 3 * c->h * 4; }

static enn_view tensor(const enn_model *m, const char *name)
{
    const enn_tensor_info *t = enn_layout_find(&m->layout, name);
    return t ? enn_view_at(m->params, t->offset) : NO_VIEW;
}

void enn_stream_destroy(enn_stream *s)
{
    if (!s) return;
    enn_context *ctx = s->model->ctx;
    enn_recorder_destroy(s->rec);
    enn_recorder_destroy(s->external);
    enn_buffer *all[] = {s->tokens, s->x, s->zr, s->z != s->zr ? s->z : NULL, s->ln1_mean, s->ln1_rstd,
                         s->ln2_mean, s->ln2_rstd, s->a, s->m, s->H, s->H_next, s->u, s->hp, s->h, s->h_next,
                         s->W_u_scratch, s->pool_sum, s->pool_acc, s->feature, s->out};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) enn_buffer_destroy(ctx, all[i]);
    free(s);
}

static enn_status stream_build(enn_stream *s)
{
    enn_model *m = s->model;
    enn_context *ctx = m->ctx;
    const enn_cell *c = &m->cell;
    uint64_t B = s->B, h = c->h, N = c->N, d = m->features;
    if (embedded(m)) ENN_TRY(enn_buffer_create(ctx, B * 4, &s->tokens));
    ENN_TRY(enn_buffer_create(ctx, B * d * 4, &s->x));
    ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->zr));
    if (c->layer_norm) {
        ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->z));
        ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->hp));
        ENN_TRY(enn_buffer_create(ctx, B * 4, &s->ln1_mean));
        ENN_TRY(enn_buffer_create(ctx, B * 4, &s->ln1_rstd));
        ENN_TRY(enn_buffer_create(ctx, B * 4, &s->ln2_mean));
        ENN_TRY(enn_buffer_create(ctx, B * 4, &s->ln2_rstd));
    } else {
        s->z = s->zr;
    }
    ENN_TRY(enn_buffer_create(ctx, B * N * 4, &s->a));
    ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->m));
    ENN_TRY(enn_buffer_create(ctx, trace_bytes(s), &s->H));
    ENN_TRY(enn_buffer_create(ctx, trace_bytes(s), &s->H_next));
    ENN_TRY(enn_buffer_create(ctx, B * 3 * h * 4, &s->u));
    ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->h));
    ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->h_next));
    if (c->W_u_staged[0] || c->W_u_staged[1] || c->W_u_staged[2])
        ENN_TRY(enn_buffer_create(ctx, 3 * enn_view_round(W_u_block_bytes(c)), &s->W_u_scratch));
    if (attention_pooled(m)) {
        ENN_TRY(enn_buffer_create(ctx, B * 4, &s->pool_sum));
        ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->pool_acc));
        ENN_TRY(enn_buffer_create(ctx, B * h * 4, &s->feature));
    }
    ENN_TRY(enn_buffer_create(ctx, B * m->config.outputs * 4, &s->out));
    ENN_TRY(enn_recorder_create(ctx, &s->rec));
    ENN_TRY(enn_recorder_create(ctx, &s->external));
    return enn_stream_reset(s);
}

enn_status enn_stream_create(enn_model *model, uint32_t batch, enn_stream **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_create: out is NULL");
    *out = NULL;
    if (!model) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_create: model is NULL");
    if (model->baseline)
        return enn_error(ENN_ERROR_UNSUPPORTED, "enn_stream_create: streaming runs the Engram cell; the rnn, gru and "
                         "lstm baselines cannot be streamed yet");
    if (batch == 0) batch = 1;
    if (batch > model->config.max_batch)
        return enn_error(ENN_ERROR_SHAPE, "enn_stream_create: %u streams; the model takes 1..%u (max_batch)", batch,
                         model->config.max_batch);
    enn_stream *s = calloc(1, sizeof *s);
    if (!s) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating a stream");
    s->model = model;
    s->B = batch;
    enn_status st = stream_build(s);
    if (st != ENN_OK) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", enn_last_error());
        enn_stream_destroy(s);
        return enn_error(st, "%s", saved);
    }
    *out = s;
    return ENN_OK;
}

enn_status enn_stream_reset(enn_stream *s)
{
    if (!s) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_reset: stream is NULL");
    ENN_TRY(enn_recorder_begin(s->rec));
    ENN_TRY(enn_record_fill(s->rec, s->h, 0, 0, 0));
    ENN_TRY(enn_record_fill(s->rec, s->H, 0, 0, 0));
    if (s->pool_sum) {
        ENN_TRY(enn_record_fill(s->rec, s->pool_sum, 0, 0, 0));
        ENN_TRY(enn_record_fill(s->rec, s->pool_acc, 0, 0, 0));
    }
    ENN_TRY(enn_recorder_run(s->rec));
    s->position = 0;
    /* The caller has waited for (or dropped) its recordings of the stream. */
    enn_recorder_forget_external(s->external);
    return ENN_OK;
}

/* C[m x n] = act(A B + beta C + bias), as enn_cell_forward calls it. */
static enn_status gemm(enn_recorder *rec, const char *name, enn_view c, enn_view a, enn_view b, uint32_t m,
                       uint32_t n, uint32_t k, float beta, enn_view bias, enn_activation act)
{
    enn_gemm_desc d = enn_gemm_desc_packed(name, c, a, 0, b, 0, m, n, k, beta, bias, act);
    return enn_gemm(rec, &d);
}

/* The running attention pooling: sums += this step, feature = acc / sum. */
static enn_status pooling_step(enn_stream *s, enn_recorder *rec)
{
    enn_model *m = s->model;
    uint32_t B = s->B, h = m->cell.h;
    const enn_pipeline *pipe;
    const uint32_t spec[1] = {POOL_LOCAL};
    ENN_TRY(enn_ops_pipeline(rec, "stream_pooling", 6, 8, spec, 1, &pipe));
    uint64_t bh = (uint64_t)B * h * 4;
    enn_binding b[6] = {
        enn_bind(enn_view_of(s->h_next), bh, ENN_ACCESS_READ),
        enn_bind(tensor(m, "pool.w"), (uint64_t)h * 4, ENN_ACCESS_READ),
        enn_bind(tensor(m, "pool.b"), 4, ENN_ACCESS_READ),
        enn_bind(enn_view_of(s->pool_sum), (uint64_t)B * 4, ENN_ACCESS_READ_WRITE),
        enn_bind(enn_view_of(s->pool_acc), bh, ENN_ACCESS_READ_WRITE),
        enn_bind(enn_view_of(s->feature), bh, ENN_ACCESS_WRITE),
    };
    uint32_t push[2] = {B, h};
    return enn_record_dispatch(rec, pipe, b, 6, push, enn_ops_row_groups(rec, B), 1, 1, "stream.pooling");
}

/* One step on x (already in s->x, or the tokens in s->tokens), leaving the head's
 * output in s->out. */
static enn_status record_step(enn_stream *s, enn_recorder *rec)
{
    enn_model *m = s->model;
    const enn_cell *c = &m->cell;
    const enn_model_config *cfg = &m->config;
    uint32_t B = s->B, h = c->h, N = c->N, d = m->features, K = cfg->outputs;
    if (embedded(m))
        ENN_TRY(enn_embedding_forward(rec, B, cfg->embedding_dim, K, tensor(m, "embedding.table"),
                                      enn_view_of(s->tokens), enn_view_of(s->x)));
    /* W_u's row blocks, aligned (as enn_cell_forward stages them). */
    enn_view W_u[3];
    uint64_t block = W_u_block_bytes(c);
    for (int k = 0; k < 3; k++) {
        if (c->W_u_staged[k]) {
            ENN_TRY(enn_record_copy(rec, c->W_u.buf, c->W_u.offset + k * block, s->W_u_scratch,
                                    k * enn_view_round(block), block));
            W_u[k] = enn_view_at(s->W_u_scratch, k * enn_view_round(block));
        } else {
            W_u[k] = c->W_u_block[k];
        }
    }

    ENN_TRY(gemm(rec, "stream.input", enn_view_of(s->zr), enn_view_of(s->x), c->W_z, B, h, d, 0.0f, c->b_z,
                 ENN_ACT_RELU));
    if (c->layer_norm)
        ENN_TRY(enn_layer_norm_forward(rec, enn_view_of(s->z), enn_view_of(s->ln1_mean), enn_view_of(s->ln1_rstd),
                                       enn_view_of(s->zr), c->ln1_gain, c->ln1_bias, B, h, c->ln_eps));
    /* Inference: no trace noise. */
    enn_memory_shape ms = {B, N, h, c->per_sample};
    enn_hebbian_params hp = {.eta = c->eta, .clip = c->clip};
    ENN_TRY(enn_memory_step_forward(rec, ms, enn_view_of(s->a), enn_view_of(s->m), enn_view_of(s->H_next),
                                    enn_view_of(s->z), c->M, enn_view_of(s->H), c->alpha, c->tau_e, &hp));
    /* The integrator in the cell's order: [z, m] parts, then the recurrent part with the ReLU. */
    ENN_TRY(gemm(rec, "stream.integrate", enn_view_of(s->u), enn_view_of(s->z), W_u[0], B, 3 * h, h, 0.0f, c->b_u,
                 ENN_ACT_NONE));
    ENN_TRY(gemm(rec, "stream.integrate", enn_view_of(s->u), enn_view_of(s->m), W_u[1], B, 3 * h, h, 1.0f, NO_VIEW,
                 ENN_ACT_NONE));
    ENN_TRY(gemm(rec, "stream.recurrent", enn_view_of(s->u), enn_view_of(s->h), W_u[2], B, 3 * h, h, 1.0f, NO_VIEW,
                 ENN_ACT_RELU));
    enn_view hp_view = c->layer_norm ? enn_view_of(s->hp) : enn_view_of(s->h_next);
    ENN_TRY(gemm(rec, "stream.output", hp_view, enn_view_of(s->u), c->W_o, B, h, 3 * h, 0.0f, c->b_o, ENN_ACT_RELU));
    if (c->layer_norm)
        ENN_TRY(enn_layer_norm_forward(rec, enn_view_of(s->h_next), enn_view_of(s->ln2_mean),
                                       enn_view_of(s->ln2_rstd), enn_view_of(s->hp), c->ln2_gain, c->ln2_bias, B, h,
                                       c->ln_eps));
    /* The new state in place, so that every step records the same commands. */
    ENN_TRY(enn_record_copy(rec, s->h_next, 0, s->h, 0, (uint64_t)B * h * 4));
    ENN_TRY(enn_record_copy(rec, s->H_next, 0, s->H, 0, trace_bytes(s)));

    /* The head on h_t. */
    /* h_next (equal to h now) needs no barrier after the copy. */
    enn_view feature = enn_view_of(s->h_next);
    if (attention_pooled(m)) {
        ENN_TRY(pooling_step(s, rec));
        feature = enn_view_of(s->feature);
    }
    return gemm(rec, "stream.head", enn_view_of(s->out), feature, m->head.W, B, K, h, 0.0f, m->head.b, ENN_ACT_NONE);
}

static enn_status host_step(enn_stream *s, const void *input, size_t input_bytes, enn_buffer *dst, float *out)
{
    enn_model *m = s->model;
    ENN_TRY(enn_buffer_upload(m->ctx, dst, 0, input, input_bytes));
    ENN_TRY(enn_recorder_begin(s->rec));
    ENN_TRY(record_step(s, s->rec));
    ENN_TRY(enn_recorder_run(s->rec));
    s->position++;
    return out ? enn_buffer_download(m->ctx, s->out, 0, out, (size_t)s->B * m->config.outputs * 4) : ENN_OK;
}

enn_status enn_stream_step(enn_stream *s, const float *x, float *out)
{
    if (!s || !x) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_step: NULL argument");
    if (embedded(s->model))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_step: an embedding language model takes token ids "
                         "(enn_stream_step_tokens)");
    return host_step(s, x, (size_t)s->B * s->model->features * 4, s->x, out);
}

enn_status enn_stream_step_tokens(enn_stream *s, const uint32_t *tokens, float *out)
{
    if (!s || !tokens) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_step_tokens: NULL argument");
    const enn_model_config *c = &s->model->config;
    if (c->head != ENN_HEAD_LANGUAGE_MODEL)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_step_tokens: the model is not a language model");
    for (uint32_t b = 0; b < s->B; b++)
        if (tokens[b] >= c->outputs)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_step_tokens: token %u of stream %u is outside the "
                             "vocabulary of %u", tokens[b], b, c->outputs);
    if (embedded(s->model)) return host_step(s, tokens, (size_t)s->B * 4, s->tokens, out);
    /* Float-feature input: the id itself is the one feature. */
    float *x = malloc((size_t)s->B * sizeof *x);
    if (!x) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "enn_stream_step_tokens");
    for (uint32_t b = 0; b < s->B; b++) x[b] = (float)tokens[b];
    enn_status st = host_step(s, x, (size_t)s->B * 4, s->x, out);
    free(x);
    return st;
}

enn_status enn_stream_record(enn_stream *s, VkCommandBuffer cmd, const enn_stream_io *io)
{
    if (!s || cmd == VK_NULL_HANDLE || !io || io->input == VK_NULL_HANDLE)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_record: NULL stream, command buffer, io or input");
    enn_model *m = s->model;
    enn_buffer *dst = embedded(m) ? s->tokens : s->x;
    /* The caller's buffers, as ranges the recorder can copy from and to. */
    enn_buffer in = {.vk_buffer = io->input, .offset = io->input_offset, .size = enn_buffer_size(dst)};
    enn_buffer out = {.vk_buffer = io->output, .offset = io->output_offset, .size = enn_buffer_size(s->out)};
    if (in.offset > UINT64_MAX - in.size || (io->output != VK_NULL_HANDLE && out.offset > UINT64_MAX - out.size))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_record: an io offset (%llu, %llu) runs past the end of "
                         "any buffer", (unsigned long long)io->input_offset, (unsigned long long)io->output_offset);
    ENN_TRY(enn_recorder_begin_external(s->external, cmd, "enn_stream_record"));
    enn_status st = enn_record_copy(s->external, &in, 0, dst, 0, in.size);
    if (st == ENN_OK) st = record_step(s, s->external);
    if (st == ENN_OK && io->output != VK_NULL_HANDLE) st = enn_record_copy(s->external, s->out, 0, &out, 0, out.size);
    enn_status end = enn_recorder_end_external(s->external, st == ENN_OK);
    ENN_TRY(st);
    ENN_TRY(end);
    s->position++;
    return ENN_OK;
}

uint32_t enn_stream_outputs(const enn_stream *s) { return s ? s->model->config.outputs : 0; }
uint64_t enn_stream_position(const enn_stream *s) { return s ? s->position : 0; }

enn_status enn_stream_state(enn_stream *s, float *h, float *H)
{
    if (!s) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_stream_state: stream is NULL");
    enn_context *ctx = s->model->ctx;
    if (h) ENN_TRY(enn_buffer_download(ctx, s->h, 0, h, (size_t)s->B * s->model->cell.h * 4));
    if (H) ENN_TRY(enn_buffer_download(ctx, s->H, 0, H, trace_bytes(s)));
    return ENN_OK;
}
