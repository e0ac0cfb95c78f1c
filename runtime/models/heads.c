/* Heads and losses on top of the recurrent part's hidden states m->seq.hs [T+1, Bp, f]
 * (the Engram cell's, or a baseline's top layer):
 *
 *   classifier      feature = attention pooling over t of h_1..h_T, or h_T (paper mode)
 *                   dropped = dropout(feature);  logits = dropped out.W + out.b   [B, C]
 *                   loss = mean softmax cross-entropy over the batch
 *   regressor       pred = h_T out.W + out.b [B, k], or every step's [T][B, k]
 *                   loss = mean squared error over every prediction
 *   language model  logits_t = h_t out.W + out.b [T][B, V]; cross-entropy over the
 *                   tokens whose target is not 0 (padding). The rows are processed in
 *                   chunks that fit one storage binding, each chunk's forward, loss and
 *                   backward together, so no [T*B, V] matrix ever exists.
 *
 * Only the first B rows of each step are real; the head reads and writes those, and
 * pooling (whose layout strides by Bp) sees zero gradient on the rest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "core/memory.h"
#include "models/model.h"
#include "ops/dropout.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/gemm_split_k.h"
#include "ops/pooling.h"
#include "ops/reduce.h"
#include "ops/softmax_cross_entropy.h"

#define STATS_SLAB 256
/* Dropout streams: apart from the trace noise's (step << 20) + t streams. */
#define DROPOUT_STREAM(pass) (((uint64_t)(pass) << 20) + 0xd0000u)
/* A chunk of language-model logits on a CPU device (lavapipe: 128 MiB bindings, host
 * memory shared with everything else). */
#define LOGITS_CHUNK_BYTES ((uint64_t)96 << 20)
/* On a GPU a chunk may take this share of the largest device-local heap, up to 1 GiB:
 * bigger chunks make every head GEMM bigger (better tiling) and read and write dW fewer
 * times per step. On the H100 (paper-lm-full, V = 188,590) 128-row chunks took 63 ms per
 * LSTM step, 512 to 4096 rows all 46-47 ms (BENCHMARKS.md): 1 GiB (1408 rows there) keeps
 * that speed at half the memory of one 3 GiB chunk. */
#define LOGITS_HEAP_SHARE 8
#define LOGITS_CHUNK_MAX_BYTES ((uint64_t)1 << 30)

static const enn_view NO_VIEW = {0};

static uint32_t feature_size(const enn_model *m) { return m->seq.f; }

static enn_view tensor(const enn_model *m, const enn_buffer *buf, const char *name)
{
    const enn_tensor_info *t = enn_layout_find(&m->layout, name);
    return t ? enn_view_at(buf, t->offset) : NO_VIEW;
}

static enn_status alloc(enn_model *m, enn_buffer **out, uint64_t bytes)
{
    /* Out of device memory: which part of the model, this buffer's size, what it holds so far. */
    enn_status made = enn_buffer_create(m->ctx, bytes, out);
    if (made != ENN_OK)
        return enn_error(made, "the head's buffers (a buffer of %llu bytes; %llu bytes held before it): %s",
                         (unsigned long long)bytes, (unsigned long long)m->head_bytes, enn_last_error());
    m->head_bytes += enn_view_round(bytes);
    return ENN_OK;
}

static enn_status gemm(enn_recorder *rec, const char *name, enn_view c, enn_view a, int ta, enn_view b, int tb,
                       uint32_t m, uint32_t n, uint32_t k, float beta, enn_view bias)
{
    enn_gemm_desc d = enn_gemm_desc_packed(name, c, a, ta, b, tb, m, n, k, beta, bias, ENN_ACT_NONE);
    return enn_gemm(rec, &d);
}

/* Rows of language-model logits per chunk, a multiple of Bp (a chunk starts on a step's
 * slab): as many as one binding, one allocation and the byte budget allow (96 MiB on a CPU
 * device, 1/LOGITS_HEAP_SHARE of the device-local heap up to 1 GiB on a GPU), or ENN_LM_CHUNK_ROWS
 * (tuning; rounded down to a multiple of Bp, at least Bp, still within the binding). */
static enn_status lm_chunk_rows(const enn_model *m, uint64_t rows, uint32_t *out)
{
    const enn_capabilities *caps = &m->ctx->caps;
    uint32_t K = m->config.outputs, Bp = m->seq.Bp;
    uint64_t row_bytes = (uint64_t)K * 4;
    uint64_t limit = caps->max_storage_buffer_range, alloc_max = enn_memory_max_allocation(m->ctx);
    if (alloc_max && alloc_max < limit) limit = alloc_max;
    uint64_t budget = caps->device_type == ENN_DEVICE_CPU ? LOGITS_CHUNK_BYTES
                                                          : caps->device_local_bytes / LOGITS_HEAP_SHARE;
    if (budget > LOGITS_CHUNK_MAX_BYTES) budget = LOGITS_CHUNK_MAX_BYTES;
    if (budget < LOGITS_CHUNK_BYTES) budget = LOGITS_CHUNK_BYTES;
    if (budget > limit) budget = limit;
    uint64_t per_chunk = budget / row_bytes;
    const char *env = m->ctx->env.lm_chunk_rows;
    if (env[0]) {
        char *end = NULL;
        unsigned long long v = env[0] >= '0' && env[0] <= '9' ? strtoull(env, &end, 10) : 0;
        if (!end || *end || v == 0)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "ENN_LM_CHUNK_ROWS=%s: want a whole number of rows, 1 or more",
                             env);
        per_chunk = v < Bp ? Bp : v;
        if (per_chunk > limit / row_bytes) per_chunk = limit / row_bytes;
    }
    per_chunk = per_chunk / Bp * Bp;
    if (per_chunk == 0)
        return enn_error(ENN_ERROR_UNSUPPORTED, "a vocabulary of %u words needs %llu bytes of logits per batch "
                         "step; the device binds at most %llu", K, (unsigned long long)Bp * row_bytes,
                         (unsigned long long)limit);
    *out = (uint32_t)(per_chunk < rows ? per_chunk : rows);
    return ENN_OK;
}

enn_status enn_head_create(enn_model *m)
{
    enn_head *hd = &m->head;
    const enn_model_config *c = &m->config;
    uint32_t f = feature_size(m), Bp = m->seq.Bp, T = c->max_seq_len, K = c->outputs;
    hd->W = tensor(m, m->params, "out.W");
    hd->b = tensor(m, m->params, "out.b");
    hd->dW = tensor(m, m->grads, "out.W");
    hd->db = tensor(m, m->grads, "out.b");
    ENN_TRY(alloc(m, &hd->stats, (uint64_t)STATS_SLAB * (T + 1)));
    if (c->head == ENN_HEAD_CLASSIFIER) {
        if (c->pooling == ENN_POOL_ATTENTION) {
            /* pool.w and pool.b are separate tensors; the kernel wants [w, b] together. */
            ENN_TRY(alloc(m, &hd->pool_s, (uint64_t)T * Bp * 4));
            ENN_TRY(alloc(m, &hd->pool_p, (uint64_t)T * Bp * 4));
            ENN_TRY(alloc(m, &hd->pool_partial, (uint64_t)Bp * (f + 1) * 4));
            ENN_TRY(alloc(m, &hd->feature, (uint64_t)Bp * f * 4));
            /* Each view is set as soon as its buffer exists: enn_head_destroy frees
             * through them, also after a failure in between. */
            enn_buffer *w, *dw;
            ENN_TRY(alloc(m, &w, (uint64_t)(f + 1) * 4));
            hd->pool_w = enn_view_of(w);
            ENN_TRY(alloc(m, &dw, (uint64_t)(f + 1) * 4));
            hd->dpool_w = enn_view_of(dw);
        }
        ENN_TRY(alloc(m, &hd->dropped, (uint64_t)Bp * f * 4));
        ENN_TRY(alloc(m, &hd->dfeature, (uint64_t)Bp * f * 4));
        ENN_TRY(alloc(m, &hd->keep_mask, (uint64_t)Bp * f * 4));
        ENN_TRY(alloc(m, &hd->labels, (uint64_t)Bp * 4));
        ENN_TRY(alloc(m, &hd->logits, (uint64_t)Bp * K * 4));
        ENN_TRY(alloc(m, &hd->dlogits, (uint64_t)Bp * K * 4));
        ENN_TRY(alloc(m, &hd->row_loss, (uint64_t)Bp * 4));
        ENN_TRY(alloc(m, &hd->lse, (uint64_t)Bp * 4));
        ENN_TRY(alloc(m, &hd->pred, (uint64_t)Bp * 4));
        hd->chunks = 1;
    } else if (c->head == ENN_HEAD_REGRESSOR) {
        uint32_t steps = c->return_sequences ? T : 1;
        uint64_t slab = enn_view_round((uint64_t)Bp * K * 4);
        ENN_TRY(alloc(m, &hd->logits, steps * slab));
        ENN_TRY(alloc(m, &hd->dlogits, steps * slab));
        ENN_TRY(alloc(m, &hd->targets, steps * slab));
        hd->chunks = steps;
    } else {
        uint64_t rows = (uint64_t)T * Bp;
        ENN_TRY(lm_chunk_rows(m, rows, &hd->chunk_rows));
        hd->chunks = (uint32_t)((rows + hd->chunk_rows - 1) / hd->chunk_rows);
        uint64_t logit_bytes = (uint64_t)hd->chunk_rows * K * 4;
        ENN_TRY(alloc(m, &hd->logits, logit_bytes));
        /* A separate gradient buffer keeps the logits readable, while it is small. */
        if (hd->chunks == 1 && logit_bytes <= ((uint64_t)64 << 20)) ENN_TRY(alloc(m, &hd->dlogits, logit_bytes));
        ENN_TRY(alloc(m, &hd->labels, (uint64_t)hd->chunks * enn_view_round((uint64_t)hd->chunk_rows * 4)));
        ENN_TRY(alloc(m, &hd->row_loss, (uint64_t)hd->chunk_rows * 4));
        ENN_TRY(alloc(m, &hd->lse, (uint64_t)hd->chunk_rows * 4));
        ENN_TRY(alloc(m, &hd->pred, (uint64_t)hd->chunk_rows * 4));
        hd->chunk_scale = calloc(hd->chunks, sizeof *hd->chunk_scale);
        if (!hd->chunk_scale) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "language-model chunks");
        if (c->lm_input == ENN_LM_EMBEDDING) {
            ENN_TRY(alloc(m, &hd->tokens, rows * 4));
            ENN_TRY(alloc(m, &hd->embedding_ws, enn_embedding_backward_workspace_bytes((uint32_t)rows)));
        }
        if (hd->stats) enn_buffer_destroy(m->ctx, hd->stats);
        ENN_TRY(alloc(m, &hd->stats, (uint64_t)STATS_SLAB * hd->chunks));
        /* dh = dlogits W^T has a [chunk_rows, f] output and K = V: split K so that more
         * than a handful of workgroups share the V-long loop (ENN_DISABLE_SPLIT_K: no). */
        hd->dh_splits = m->ctx->env.disable_split_k ? 1 : enn_gemm_split_k_count(hd->chunk_rows, f, K);
        if (hd->dh_splits > 1)
            ENN_TRY(alloc(m, &hd->split_ws, enn_gemm_split_k_workspace_bytes(hd->chunk_rows, f, hd->dh_splits)));
    }
    return ENN_OK;
}

void enn_head_destroy(enn_model *m)
{
    enn_head *hd = &m->head;
    enn_buffer *all[] = {hd->pool_s, hd->pool_p, hd->pool_partial, hd->feature, (enn_buffer *)hd->pool_w.buf,
                         (enn_buffer *)hd->dpool_w.buf, hd->dropped, hd->dfeature, hd->keep_mask, hd->labels,
                         hd->targets, hd->logits, hd->dlogits, hd->row_loss, hd->lse, hd->pred, hd->stats, hd->tokens,
                         hd->embedding_ws, hd->split_ws};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) enn_buffer_destroy(m->ctx, all[i]);
    free(hd->chunk_scale);
    memset(hd, 0, sizeof *hd);
}

enn_status enn_head_check_batch(const enn_model *m, const enn_batch *batch)
{
    const enn_model_config *c = &m->config;
    uint32_t B = batch->size, T = batch->seq_len, K = c->outputs;
    if (c->head == ENN_HEAD_CLASSIFIER) {
        if (!batch->labels) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the classifier's batch has no labels");
        for (uint32_t i = 0; i < B; i++)
            if (batch->labels[i] >= K)
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "label %u of sample %u is not a class (0..%u)",
                                 batch->labels[i], i, K - 1);
        return ENN_OK;
    }
    if (c->head == ENN_HEAD_REGRESSOR) {
        if (!batch->y) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the regressor's batch has no targets (y)");
        size_t n = (size_t)B * (c->return_sequences ? T : 1) * K;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(batch->y[i]))
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "target %zu of the batch (y) is %g: targets must be "
                                 "finite", i, batch->y[i]);
        return ENN_OK;
    }
    if (!batch->targets) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the language model's batch has no targets");
    if (c->lm_input == ENN_LM_EMBEDDING && !batch->tokens)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "the language model's batch has no tokens");
    for (uint32_t b = 0; b < B; b++)
        for (uint32_t t = 0; t < T; t++) {
            uint32_t y = batch->targets[(size_t)b * T + t];
            if (y >= K)
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "target %u at sample %u, step %u is outside the "
                                 "vocabulary of %u", y, b, t, K);
            uint32_t id = c->lm_input == ENN_LM_EMBEDDING ? batch->tokens[(size_t)b * T + t] : 0;
            if (id >= K)
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "token %u at sample %u, step %u is outside the "
                                 "vocabulary of %u", id, b, t, K);
        }
    return ENN_OK;
}

enn_status enn_head_upload(enn_model *m, const enn_batch *batch)
{
    enn_head *hd = &m->head;
    const enn_model_config *c = &m->config;
    uint32_t B = batch->size, T = batch->seq_len, Bp = m->seq.Bp, K = c->outputs;
    if (c->head == ENN_HEAD_CLASSIFIER) return enn_record_upload(m->rec, hd->labels, 0, batch->labels, (size_t)B * 4);
    if (c->head == ENN_HEAD_REGRESSOR) {
        uint32_t steps = c->return_sequences ? T : 1;
        uint64_t slab = enn_view_round((uint64_t)Bp * K * 4);
        float *h = enn_model_host_floats(m, slab / 4 * steps);
        if (!h) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "staging targets");
        memset(h, 0, slab * steps);
        for (uint32_t s = 0; s < steps; s++)
            for (uint32_t b = 0; b < B; b++)
                for (uint32_t k = 0; k < K; k++)
                    h[s * slab / 4 + (size_t)b * K + k] =
                        c->return_sequences ? batch->y[((size_t)b * T + s) * K + k] : batch->y[(size_t)b * K + k];
        return enn_record_upload(m->rec, hd->targets, 0, h, slab * steps);
    }
    /* Language model: targets [T, Bp] laid out chunk by chunk; the per-chunk share of
     * the non-pad tokens scales each chunk's gradient to the mean over the batch. */
    uint64_t cslab = enn_view_round((uint64_t)hd->chunk_rows * 4);
    uint32_t *lab = (uint32_t *)enn_model_host_floats(m, cslab / 4 * hd->chunks);
    if (!lab) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "staging targets");
    memset(lab, 0, cslab * hd->chunks);
    uint32_t total = 0;
    uint32_t *counts = calloc(hd->chunks, sizeof *counts);
    if (!counts) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "staging targets");
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t b = 0; b < B; b++) {
            uint32_t y = batch->targets[(size_t)b * T + t];
            uint64_t row = (uint64_t)t * Bp + b;
            uint32_t chunk = (uint32_t)(row / hd->chunk_rows);
            lab[chunk * cslab / 4 + row % hd->chunk_rows] = y;
            if (y != 0) { counts[chunk]++; total++; }
        }
    for (uint32_t k = 0; k < hd->chunks; k++) hd->chunk_scale[k] = total ? (float)counts[k] / (float)total : 0.0f;
    free(counts);
    hd->total_tokens = total;
    ENN_TRY(enn_record_upload(m->rec, hd->labels, 0, lab, cslab * hd->chunks));
    if (c->lm_input == ENN_LM_EMBEDDING) {
        uint32_t *ids = (uint32_t *)enn_model_host_floats(m, (size_t)T * Bp);
        if (!ids) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "staging tokens");
        memset(ids, 0, (size_t)T * Bp * 4);
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t b = 0; b < B; b++) {
                ids[(size_t)t * Bp + b] = batch->tokens[(size_t)b * T + t];
            }
        ENN_TRY(enn_record_upload(m->rec, hd->tokens, 0, ids, (size_t)T * Bp * 4));
    }
    return ENN_OK;
}

static enn_view hs_step(const enn_model *m, uint32_t t)
{
    return enn_cell_step(m->seq.hs, t, enn_view_round((uint64_t)m->seq.Bp * m->seq.f * 4));
}
static enn_view dhs_step(const enn_model *m, uint32_t t)
{
    return enn_cell_step(m->seq.dhs, t, enn_view_round((uint64_t)m->seq.Bp * m->seq.f * 4));
}

static enn_dropout_params dropout_params(const enn_model *m, const enn_forward_inputs *in)
{
    enn_dropout_params p = {.p = m->config.dropout, .seed = m->config.seed, .stream = DROPOUT_STREAM(m->passes)};
    if (in && in->keep_mask) p.mask = enn_view_of(m->head.keep_mask);
    return p;
}

static int dropout_on(const enn_model *m, int training, const enn_forward_inputs *in)
{
    return training && m->config.dropout > 0.0f && !(in && in->no_dropout);
}

/* The language model's rows in chunks: forward, loss and (when training) backward. */
static enn_status lm_chunks(enn_model *m, enn_recorder *rec, uint32_t T, uint32_t B, int training)
{
    enn_head *hd = &m->head;
    uint32_t f = feature_size(m), K = m->config.outputs, Bp = m->seq.Bp;
    uint64_t rows = (uint64_t)T * Bp;
    uint64_t cslab = enn_view_round((uint64_t)hd->chunk_rows * 4);
    uint32_t chunks = (uint32_t)((rows + hd->chunk_rows - 1) / hd->chunk_rows);
    (void)B;
    for (uint32_t k = 0; k < chunks; k++) {
        uint64_t first = (uint64_t)k * hd->chunk_rows;
        uint32_t n = (uint32_t)(rows - first < hd->chunk_rows ? rows - first : hd->chunk_rows);
        /* chunk_rows is a multiple of Bp, so a chunk starts on a step's slab. */
        enn_view h_rows = hs_step(m, 1 + (uint32_t)(first / Bp));
        enn_view logits = enn_view_of(hd->logits), dlogits = hd->dlogits ? enn_view_of(hd->dlogits) : logits;
        enn_view labels = enn_view_at(hd->labels, k * cslab);
        enn_view stats = enn_view_at(hd->stats, (uint64_t)k * STATS_SLAB);
        ENN_TRY(gemm(rec, "lm.logits", logits, h_rows, 0, hd->W, 0, n, K, f, 0.0f, hd->b));
        enn_xent_shape xs = {.rows = n, .classes = K, .ignore_index = 0};
        ENN_TRY(enn_softmax_cross_entropy_forward(rec, &xs, logits, labels, enn_view_of(hd->row_loss),
                                                  enn_view_of(hd->lse), enn_view_of(hd->pred), stats));
        if (!training) continue;
        ENN_TRY(enn_softmax_cross_entropy_backward(rec, &xs, logits, labels, enn_view_of(hd->lse), stats,
                                                   hd->chunk_scale[k], dlogits, hd->db));
        ENN_TRY(gemm(rec, "lm.dW", hd->dW, h_rows, 1, dlogits, 0, f, K, n, 1.0f, NO_VIEW));
        enn_view dh = dhs_step(m, 1 + (uint32_t)(first / Bp));
        if (hd->dh_splits > 1) {
            enn_gemm_desc d = ENN_GEMM_DESC_INIT;
            d.a = dlogits, d.b = hd->W, d.c = dh;
            d.m = n, d.n = f, d.k = K;
            d.trans_b = 1;
            d.name = "lm.dhs";
            ENN_TRY(enn_gemm_split_k(rec, &d, hd->dh_splits, enn_view_of(hd->split_ws)));
        } else {
            ENN_TRY(gemm(rec, "lm.dhs", dh, dlogits, 0, hd->W, 1, n, f, K, 0.0f, NO_VIEW));
        }
    }
    return ENN_OK;
}

/* pool.w and pool.b into the kernel's [w, b] scratch. */
static enn_status stage_pool_weights(enn_model *m, enn_recorder *rec)
{
    uint32_t f = feature_size(m);
    enn_view w = tensor(m, m->params, "pool.w"), b = tensor(m, m->params, "pool.b");
    ENN_TRY(enn_record_copy(rec, w.buf, w.offset, m->head.pool_w.buf, 0, (uint64_t)f * 4));
    return enn_record_copy(rec, b.buf, b.offset, m->head.pool_w.buf, (uint64_t)f * 4, 4);
}

enn_status enn_head_forward(enn_model *m, enn_recorder *rec, uint32_t T, uint32_t B, int training,
                            const enn_forward_inputs *in)
{
    enn_head *hd = &m->head;
    const enn_model_config *c = &m->config;
    uint32_t f = feature_size(m), K = c->outputs, Bp = m->seq.Bp;
    if (c->head == ENN_HEAD_LANGUAGE_MODEL) return lm_chunks(m, rec, T, B, training);
    if (c->head == ENN_HEAD_REGRESSOR) {
        uint64_t slab = enn_view_round((uint64_t)Bp * K * 4);
        uint32_t steps = c->return_sequences ? T : 1;
        for (uint32_t s = 0; s < steps; s++) {
            enn_view h = hs_step(m, c->return_sequences ? s + 1 : T);
            enn_view pred = enn_view_at(hd->logits, s * slab), dpred = enn_view_at(hd->dlogits, s * slab);
            ENN_TRY(gemm(rec, "regressor", pred, h, 0, hd->W, 0, B, K, f, 0.0f, hd->b));
            ENN_TRY(enn_mse_loss(rec, B * K, 1.0f / (float)steps, pred, enn_view_at(hd->targets, s * slab), dpred,
                                 enn_view_at(hd->stats, (uint64_t)s * STATS_SLAB)));
        }
        return ENN_OK;
    }
    /* Classifier. */
    enn_view feature;
    if (c->pooling == ENN_POOL_ATTENTION) {
        ENN_TRY(stage_pool_weights(m, rec));
        ENN_TRY(enn_attention_pooling_forward(rec, T, Bp, f, hs_step(m, 1), hd->pool_w, enn_view_of(hd->pool_s),
                                              enn_view_of(hd->pool_p), enn_view_of(hd->feature)));
        feature = enn_view_of(hd->feature);
    } else {
        feature = hs_step(m, T);
    }
    enn_view x = feature;
    if (dropout_on(m, training, in)) {
        enn_dropout_params p = dropout_params(m, in);
        ENN_TRY(enn_dropout_forward(rec, enn_view_of(hd->dropped), feature, B * f, &p));
        x = enn_view_of(hd->dropped);
    }
    ENN_TRY(gemm(rec, "classifier", enn_view_of(hd->logits), x, 0, hd->W, 0, B, K, f, 0.0f, hd->b));
    enn_xent_shape xs = {.rows = B, .classes = K, .ignore_index = ENN_NO_IGNORE};
    return enn_softmax_cross_entropy_forward(rec, &xs, enn_view_of(hd->logits), enn_view_of(hd->labels),
                                             enn_view_of(hd->row_loss), enn_view_of(hd->lse), enn_view_of(hd->pred),
                                             enn_view_of(hd->stats));
}

enn_status enn_head_backward(enn_model *m, enn_recorder *rec, uint32_t T, uint32_t B, int training,
                             const enn_forward_inputs *in)
{
    enn_head *hd = &m->head;
    const enn_model_config *c = &m->config;
    uint32_t f = feature_size(m), K = c->outputs, Bp = m->seq.Bp;
    if (c->head == ENN_HEAD_LANGUAGE_MODEL) return ENN_OK; /* done chunk by chunk in the forward */
    /* Steps the head does not reach keep zero gradient. */
    ENN_TRY(enn_record_fill(rec, m->seq.dhs, 0, 0, 0));
    if (c->head == ENN_HEAD_REGRESSOR) {
        uint64_t slab = enn_view_round((uint64_t)Bp * K * 4);
        uint32_t steps = c->return_sequences ? T : 1;
        for (uint32_t s = 0; s < steps; s++) {
            uint32_t t = c->return_sequences ? s + 1 : T;
            enn_view dpred = enn_view_at(hd->dlogits, s * slab);
            ENN_TRY(gemm(rec, "regressor.dW", hd->dW, hs_step(m, t), 1, dpred, 0, f, K, B, 1.0f, NO_VIEW));
            ENN_TRY(enn_sum_rows(rec, B, K, dpred, 1.0f, 1.0f, hd->db));
            ENN_TRY(gemm(rec, "regressor.dh", dhs_step(m, t), dpred, 0, hd->W, 1, B, f, K, 0.0f, NO_VIEW));
        }
        return ENN_OK;
    }
    enn_xent_shape xs = {.rows = B, .classes = K, .ignore_index = ENN_NO_IGNORE};
    ENN_TRY(enn_softmax_cross_entropy_backward(rec, &xs, enn_view_of(hd->logits), enn_view_of(hd->labels),
                                               enn_view_of(hd->lse), enn_view_of(hd->stats), 1.0f,
                                               enn_view_of(hd->dlogits), hd->db));
    int dropped = dropout_on(m, training, in);
    enn_view feature = c->pooling == ENN_POOL_ATTENTION ? enn_view_of(hd->feature) : hs_step(m, T);
    enn_view x = dropped ? enn_view_of(hd->dropped) : feature;
    ENN_TRY(gemm(rec, "classifier.dW", hd->dW, x, 1, enn_view_of(hd->dlogits), 0, f, K, B, 1.0f, NO_VIEW));
    /* The gradient of the pooled feature: into dfeature (attention pooling, whose
     * padding rows must read zero) or straight into dh_T (last-state pooling). Dropout's
     * backward then works in place. */
    enn_view dfeat = c->pooling == ENN_POOL_ATTENTION ? enn_view_of(hd->dfeature) : dhs_step(m, T);
    if (c->pooling == ENN_POOL_ATTENTION) ENN_TRY(enn_record_fill(rec, hd->dfeature, 0, 0, 0));
    ENN_TRY(gemm(rec, "classifier.dx", dfeat, enn_view_of(hd->dlogits), 0, hd->W, 1, B, f, K, 0.0f, NO_VIEW));
    if (dropped) {
        enn_dropout_params p = dropout_params(m, in);
        ENN_TRY(enn_dropout_backward(rec, dfeat, dfeat, B * f, &p, 0.0f));
    }
    if (c->pooling == ENN_POOL_ATTENTION) {
        ENN_TRY(enn_record_fill(rec, (enn_buffer *)hd->dpool_w.buf, 0, 0, 0));
        ENN_TRY(enn_attention_pooling_backward(rec, T, Bp, f, hs_step(m, 1), hd->pool_w, enn_view_of(hd->pool_s),
                                               enn_view_of(hd->pool_p), dfeat, dhs_step(m, 1), 0,
                                               enn_view_of(hd->pool_partial), hd->dpool_w));
        enn_view gw = tensor(m, m->grads, "pool.w"), gb = tensor(m, m->grads, "pool.b");
        ENN_TRY(enn_record_copy(rec, hd->dpool_w.buf, 0, gw.buf, gw.offset, (uint64_t)f * 4));
        ENN_TRY(enn_record_copy(rec, hd->dpool_w.buf, (uint64_t)f * 4, gb.buf, gb.offset, 4));
    }
    return ENN_OK;
}

/* Slabs of head.stats the pass writes: one per chunk (language model), per step
 * (sequence regressor), else one. */
static uint32_t stats_slabs(const enn_model *m, uint32_t T)
{
    const enn_model_config *c = &m->config;
    if (c->head == ENN_HEAD_REGRESSOR) return c->return_sequences ? T : 1;
    if (c->head == ENN_HEAD_LANGUAGE_MODEL) {
        uint64_t rows = (uint64_t)T * m->seq.Bp;
        return (uint32_t)((rows + m->head.chunk_rows - 1) / m->head.chunk_rows);
    }
    return 1;
}

enn_status enn_head_record_result(enn_model *m, enn_recorder *rec, uint32_t T)
{
    return enn_record_readback(rec, m->head.stats, 0, (VkDeviceSize)stats_slabs(m, T) * STATS_SLAB,
                               &m->head.stats_host);
}

enn_status enn_head_result(enn_model *m, uint32_t T, uint32_t B, enn_step_result *out)
{
    enn_head *hd = &m->head;
    const enn_model_config *c = &m->config;
    memset(out, 0, sizeof *out);
    if (c->head == ENN_HEAD_REGRESSOR) {
        uint32_t steps = c->return_sequences ? T : 1;
        for (uint32_t s = 0; s < steps; s++) {
            float loss;
            memcpy(&loss, (const unsigned char *)hd->stats_host + (size_t)s * STATS_SLAB, 4);
            out->loss += loss;
        }
        out->counted = B;
        return ENN_OK;
    }
    uint32_t chunks = 1;
    if (c->head == ENN_HEAD_LANGUAGE_MODEL) {
        uint64_t rows = (uint64_t)T * m->seq.Bp;
        chunks = (uint32_t)((rows + hd->chunk_rows - 1) / hd->chunk_rows);
    }
    double sum = 0;
    for (uint32_t k = 0; k < chunks; k++) {
        enn_xent_stats st;
        memcpy(&st, (const unsigned char *)hd->stats_host + (size_t)k * STATS_SLAB, sizeof st);
        sum += st.sum_loss;
        out->correct += st.correct;
        out->counted += st.count;
    }
    out->loss = out->counted ? (float)(sum / out->counted) : 0.0f;
    return ENN_OK;
}

size_t enn_head_output_count(const enn_model *m, uint32_t T, uint32_t B)
{
    const enn_model_config *c = &m->config;
    int per_step = c->head == ENN_HEAD_LANGUAGE_MODEL || (c->head == ENN_HEAD_REGRESSOR && c->return_sequences);
    return (size_t)B * (per_step ? T : 1) * c->outputs;
}

enn_status enn_head_outputs_kept(const enn_model *m, uint32_t T)
{
    const enn_head *hd = &m->head;
    uint64_t rows = (uint64_t)T * m->seq.Bp;
    if (m->config.head == ENN_HEAD_LANGUAGE_MODEL && (rows > hd->chunk_rows || !hd->dlogits))
        return enn_error(ENN_ERROR_UNSUPPORTED, "the logits of %llu tokens over %u words are not kept (they are "
                         "computed in chunks); ask for the loss only", (unsigned long long)rows, m->config.outputs);
    return ENN_OK;
}

enn_status enn_head_outputs(enn_model *m, uint32_t T, uint32_t B, float *out)
{
    enn_head *hd = &m->head;
    const enn_model_config *c = &m->config;
    uint32_t K = c->outputs, Bp = m->seq.Bp;
    if (c->head == ENN_HEAD_CLASSIFIER) return enn_buffer_download(m->ctx, hd->logits, 0, out, (size_t)B * K * 4);
    if (c->head == ENN_HEAD_REGRESSOR) {
        uint64_t slab = enn_view_round((uint64_t)Bp * K * 4);
        if (!c->return_sequences) return enn_buffer_download(m->ctx, hd->logits, 0, out, (size_t)B * K * 4);
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t b = 0; b < B; b++)
                ENN_TRY(enn_buffer_download(m->ctx, hd->logits, t * slab + (uint64_t)b * K * 4,
                                            out + ((size_t)b * T + t) * K, (size_t)K * 4));
        return ENN_OK;
    }
    ENN_TRY(enn_head_outputs_kept(m, T));
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t b = 0; b < B; b++)
            ENN_TRY(enn_buffer_download(m->ctx, hd->logits, ((uint64_t)t * Bp + b) * K * 4,
                                        out + ((size_t)b * T + t) * K, (size_t)K * 4));
    return ENN_OK;
}
