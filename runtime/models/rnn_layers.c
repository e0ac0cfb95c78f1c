/* The baselines' stacked recurrent layers: see rnn_layers.h for the structure. */
#include "models/rnn_layers.h"

#include <stdio.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/reduce.h"
#include "ops/rnn_gates.h"
#include "ops/rnn_recurrence.h"

static const enn_view NO_VIEW = {0};

uint32_t enn_rnn_padded_batch(uint32_t B, uint32_t layers, const uint32_t *units)
{
    /* A slab of [Bp, w] floats is view-aligned when Bp * w is a multiple of
     * ENN_VIEW_ALIGN / 4 (a power of two): Bp must be a multiple of q / gcd(w, q), and
     * the largest of these (all powers of two) is a multiple of the others. */
    uint32_t q = ENN_VIEW_ALIGN / 4, step = 1;
    for (uint32_t l = 0; l < layers; l++) {
        uint32_t g = units[l];
        for (uint32_t a = q; a;) { uint32_t r = g % a; g = a; a = r; } /* g = gcd(units, q) */
        if (q / g > step) step = q / g;
    }
    return (B + step - 1) / step * step;
}

const enn_rnn_layer *enn_rnn_top(const enn_rnn_stack *s) { return &s->layer[s->layers - 1]; }

static uint64_t slab(const enn_rnn_stack *s, uint32_t width) { return enn_view_round((uint64_t)s->Bp * width * 4); }
static enn_view step_view(const enn_buffer *buf, uint32_t t, uint64_t slab_bytes)
{
    return enn_view_at(buf, (VkDeviceSize)t * slab_bytes);
}

static enn_status alloc(enn_rnn_stack *s, enn_buffer **out, uint64_t bytes)
{
    /* Out of device memory: which part of the model, this buffer's size, what it holds so far. */
    enn_status made = enn_buffer_create(s->ctx, bytes, out);
    if (made != ENN_OK)
        return enn_error(made, "the recurrent layers' activations (a buffer of %llu bytes; %llu bytes held before it): %s",
                         (unsigned long long)bytes, (unsigned long long)s->activation_bytes, enn_last_error());
    s->activation_bytes += enn_view_round(bytes);
    return ENN_OK;
}

static enn_status param(const enn_layout *l, const enn_buffer *params, const enn_buffer *grads, const char *name,
                        uint32_t i, enn_view *p, enn_view *g, uint64_t *offset)
{
    char full[ENN_TENSOR_NAME];
    snprintf(full, sizeof full, "layer%u.%s", i, name);
    const enn_tensor_info *t = enn_layout_find(l, full);
    if (!t) return enn_error(ENN_ERROR_INTERNAL, "the model layout has no %s", full);
    *p = enn_view_at(params, t->offset);
    *g = enn_view_at(grads, t->offset);
    if (offset) *offset = t->offset;
    return ENN_OK;
}

static enn_view view_or_none(const enn_buffer *b) { return b ? enn_view_of(b) : NO_VIEW; }

/* The fused whole-sequence recurrence (CPU devices, rnn_recurrence.h) for layer L, if it
 * runs there: *shape filled in. */
static int fused(const enn_rnn_stack *s, const enn_rnn_layer *L, uint32_t T, uint32_t B,
                 enn_rnn_recurrence_shape *shape)
{
    enn_rnn_cell cell = s->kind == ENN_MODEL_LSTM ? ENN_RNN_CELL_LSTM
                        : s->kind == ENN_MODEL_GRU ? ENN_RNN_CELL_GRU
                                                   : ENN_RNN_CELL_SIMPLE;
    *shape = (enn_rnn_recurrence_shape){cell, T, B, L->units, slab(s, L->units), slab(s, L->width)};
    return enn_rnn_recurrence_available(s->ctx, shape, L->U);
}

#define FOR_EACH_BUFFER(L, X) X((L)->b_rec) X((L)->db_rec) X((L)->pre) X((L)->hu) X((L)->hs) X((L)->cs) \
    X((L)->dpre) X((L)->dhu) X((L)->dhs) X((L)->dc) X((L)->Ut)

enn_status enn_rnn_stack_create(enn_context *ctx, const enn_model_config *cfg, const enn_layout *lay,
                                const enn_buffer *params, const enn_buffer *grads, uint32_t d, enn_rnn_stack *s)
{
    memset(s, 0, sizeof *s);
    if (cfg->kind != ENN_MODEL_RNN && cfg->kind != ENN_MODEL_GRU && cfg->kind != ENN_MODEL_LSTM)
        return enn_error(ENN_ERROR_INTERNAL, "enn_rnn_stack_create: model kind %d is not a baseline", (int)cfg->kind);
    s->ctx = ctx;
    s->kind = cfg->kind;
    s->layers = cfg->layers;
    s->d = d;
    s->T = cfg->max_seq_len;
    s->B = cfg->max_batch;
    s->Bp = enn_rnn_padded_batch(s->B, s->layers, cfg->layer_units);
    uint32_t gates = s->kind == ENN_MODEL_RNN ? 1 : s->kind == ENN_MODEL_GRU ? 3 : 4;
    uint32_t T = s->T;
    ENN_TRY(alloc(s, &s->x, (uint64_t)T * s->Bp * (d ? d : 1) * 4));
    ENN_TRY(alloc(s, &s->dx, (uint64_t)T * s->Bp * (d ? d : 1) * 4));
    uint32_t in = d;
    for (uint32_t i = 0; i < s->layers; i++) {
        enn_rnn_layer *L = &s->layer[i];
        uint32_t u = cfg->layer_units[i];
        L->in = in;
        L->units = u;
        L->width = gates * u;
        uint64_t bias_offset = 0;
        ENN_TRY(param(lay, params, grads, "kernel", i, &L->W, &L->dW, NULL));
        ENN_TRY(param(lay, params, grads, "recurrent_kernel", i, &L->U, &L->dU, NULL));
        ENN_TRY(param(lay, params, grads, "bias", i, &L->b, &L->db, &bias_offset));
        uint64_t su = slab(s, u), sw = slab(s, L->width);
        ENN_TRY(alloc(s, &L->hs, (T + 1) * su));
        ENN_TRY(alloc(s, &L->dhs, (T + 1) * su));
        ENN_TRY(alloc(s, &L->dpre, T * sw));
        if (s->kind != ENN_MODEL_RNN) ENN_TRY(alloc(s, &L->pre, T * sw));
        if (s->kind == ENN_MODEL_LSTM) {
            ENN_TRY(alloc(s, &L->cs, (T + 1) * su));
            ENN_TRY(alloc(s, &L->dc, su));
        }
        if (s->kind == ENN_MODEL_GRU) {
            L->b_rec_offset = bias_offset + (uint64_t)L->width * 4;
            ENN_TRY(alloc(s, &L->b_rec, (uint64_t)L->width * 4));
            ENN_TRY(alloc(s, &L->db_rec, (uint64_t)L->width * 4));
            ENN_TRY(alloc(s, &L->hu, T * sw));
            ENN_TRY(alloc(s, &L->dhu, T * sw));
        }
        enn_rnn_recurrence_shape shape;
        if (fused(s, L, T, s->B, &shape)) ENN_TRY(alloc(s, &L->Ut, (uint64_t)u * L->width * 4));
        in = u;
    }
    /* Padding rows must start (and stay) finite and zero where nothing writes them. */
    enn_recorder *rec;
    ENN_TRY(enn_recorder_create(ctx, &rec));
    enn_status st = enn_recorder_begin(rec);
    if (st == ENN_OK) st = enn_record_fill(rec, s->x, 0, 0, 0);
    if (st == ENN_OK) st = enn_record_fill(rec, s->dx, 0, 0, 0);
#define FILL(b) if (st == ENN_OK && (b)) st = enn_record_fill(rec, (b), 0, 0, 0);
    for (uint32_t i = 0; i < s->layers; i++) { FOR_EACH_BUFFER(&s->layer[i], FILL) }
#undef FILL
    if (st == ENN_OK) st = enn_recorder_run(rec);
    enn_recorder_destroy(rec);
    return st;
}

void enn_rnn_stack_destroy(enn_rnn_stack *s)
{
    if (!s->ctx) return;
#define DESTROY(b) if (b) enn_buffer_destroy(s->ctx, (b));
    for (uint32_t i = 0; i < s->layers; i++) { FOR_EACH_BUFFER(&s->layer[i], DESTROY) }
    DESTROY(s->x)
    DESTROY(s->dx)
#undef DESTROY
    memset(s, 0, sizeof *s);
}

/* C[m x n] = act(A op B + beta C + bias), all packed row-major. */
static enn_status gemm(enn_recorder *rec, const char *name, enn_view c, enn_view a, int ta, enn_view b, int tb,
                       uint32_t m, uint32_t n, uint32_t k, float beta, enn_view bias, enn_activation act)
{
    enn_gemm_desc g = enn_gemm_desc_packed(name, c, a, ta, b, tb, m, n, k, beta, bias, act);
    return enn_gemm(rec, &g);
}

static enn_status check_sizes(const enn_rnn_stack *s, const char *fn, uint32_t T, uint32_t B)
{
    if (!T || T > s->T || !B || B > s->B)
        return enn_error(ENN_ERROR_SHAPE, "%s: T=%u, B=%u; the model was made for 1..%u steps and 1..%u samples", fn, T,
                         B, s->T, s->B);
    return ENN_OK;
}

enn_status enn_rnn_initial_state(enn_rnn_stack *s, enn_recorder *rec, uint32_t carry_from)
{
    for (uint32_t i = 0; i < s->layers; i++) {
        enn_rnn_layer *L = &s->layer[i];
        uint64_t su = slab(s, L->units);
        enn_buffer *state[2] = {L->hs, L->cs};
        for (int k = 0; k < 2; k++) {
            if (!state[k]) continue;
            if (carry_from) ENN_TRY(enn_record_copy(rec, state[k], carry_from * su, state[k], 0, su));
            else ENN_TRY(enn_record_fill(rec, state[k], 0, su, 0));
        }
    }
    return ENN_OK;
}

/* The layer's input rows X [T * Bp, in]: x, or the layer below's h_1..h_T. */
static enn_view layer_input(const enn_rnn_stack *s, uint32_t i)
{
    if (i == 0) return enn_view_of(s->x);
    const enn_rnn_layer *below = &s->layer[i - 1];
    return step_view(below->hs, 1, slab(s, below->units));
}

enn_status enn_rnn_forward(enn_rnn_stack *s, enn_recorder *rec, uint32_t T, uint32_t B)
{
    ENN_TRY(check_sizes(s, "enn_rnn_forward", T, B));
    const uint32_t R = T * s->Bp;
    for (uint32_t i = 0; i < s->layers; i++) {
        enn_rnn_layer *L = &s->layer[i];
        const uint32_t u = L->units, w = L->width;
        const uint64_t su = slab(s, u), sw = slab(s, w);
        enn_rnn_recurrence_shape shape;
        enn_view X = layer_input(s, i);
        if (s->kind == ENN_MODEL_RNN) {
            /* P lands in hs slabs 1..T; each step adds h_{t-1} U and applies tanh in place. */
            ENN_TRY(gemm(rec, "rnn.input", step_view(L->hs, 1, su), X, 0, L->W, 0, R, u, L->in, 0.0f, L->b,
                         ENN_ACT_NONE));
            if (fused(s, L, T, B, &shape)) {
                ENN_TRY(enn_rnn_recurrence_forward(rec, &shape, L->U, NO_VIEW, enn_view_of(L->hs), NO_VIEW, NO_VIEW,
                                                   NO_VIEW));
                continue;
            }
            for (uint32_t t = 0; t < T; t++)
                ENN_TRY(gemm(rec, "rnn.recurrent", step_view(L->hs, t + 1, su), step_view(L->hs, t, su), 0, L->U, 0,
                             B, u, u, 1.0f, NO_VIEW, ENN_ACT_TANH));
            continue;
        }
        ENN_TRY(gemm(rec, s->kind == ENN_MODEL_LSTM ? "lstm.input" : "gru.input", enn_view_of(L->pre), X, 0, L->W, 0,
                     R, w, L->in, 0.0f, L->b, ENN_ACT_NONE));
        if (s->kind == ENN_MODEL_GRU)
            ENN_TRY(enn_record_copy(rec, L->b.buf, L->b_rec_offset, L->b_rec, 0, (uint64_t)w * 4));
        if (fused(s, L, T, B, &shape)) {
            ENN_TRY(enn_rnn_recurrence_forward(rec, &shape, L->U, view_or_none(L->b_rec), enn_view_of(L->hs),
                                               enn_view_of(L->pre), view_or_none(L->cs), view_or_none(L->hu)));
            continue;
        }
        for (uint32_t t = 0; t < T; t++) {
            enn_view P_t = step_view(L->pre, t, sw), h_prev = step_view(L->hs, t, su), h = step_view(L->hs, t + 1, su);
            if (s->kind == ENN_MODEL_LSTM) {
                ENN_TRY(gemm(rec, "lstm.recurrent", P_t, h_prev, 0, L->U, 0, B, w, u, 1.0f, NO_VIEW, ENN_ACT_NONE));
                ENN_TRY(enn_lstm_gates_forward(rec, B, u, P_t, step_view(L->cs, t, su), step_view(L->cs, t + 1, su), h));
            } else {
                enn_view Q_t = step_view(L->hu, t, sw);
                ENN_TRY(gemm(rec, "gru.recurrent", Q_t, h_prev, 0, L->U, 0, B, w, u, 0.0f, enn_view_of(L->b_rec),
                             ENN_ACT_NONE));
                ENN_TRY(enn_gru_gates_forward(rec, B, u, P_t, Q_t, h_prev, h));
            }
        }
    }
    return ENN_OK;
}

enn_status enn_rnn_backward(enn_rnn_stack *s, enn_recorder *rec, uint32_t T, uint32_t B, int want_dx)
{
    ENN_TRY(check_sizes(s, "enn_rnn_backward", T, B));
    const uint32_t R = T * s->Bp;
    for (uint32_t i = s->layers; i-- > 0;) {
        enn_rnn_layer *L = &s->layer[i];
        const uint32_t u = L->units, w = L->width;
        const uint64_t su = slab(s, u), sw = slab(s, w);
        /* Rows the loop does not write hold zero gradient (a smaller batch than the last
         * one would leave stale rows); nothing flows in after the last step. */
        ENN_TRY(enn_record_fill(rec, L->dpre, 0, 0, 0));
        if (L->dhu) ENN_TRY(enn_record_fill(rec, L->dhu, 0, 0, 0));
        if (L->dc) ENN_TRY(enn_record_fill(rec, L->dc, 0, 0, 0));
        ENN_TRY(enn_record_fill(rec, L->dhs, 0, su, 0));
        /* The gradient that reaches h_{t-1} through U: dP_t (SimpleRNN, LSTM) or dQ_t (GRU). */
        enn_buffer *drec = s->kind == ENN_MODEL_GRU ? L->dhu : L->dpre;
        enn_rnn_recurrence_shape shape;
        const int one_dispatch = L->Ut && fused(s, L, T, B, &shape); /* Ut: allocated when it runs */
        if (one_dispatch)
            ENN_TRY(enn_rnn_recurrence_backward(rec, &shape, L->U, view_or_none(L->Ut), enn_view_of(L->hs),
                                                view_or_none(L->pre), view_or_none(L->cs), view_or_none(L->hu),
                                                enn_view_of(L->dhs), enn_view_of(L->dpre), view_or_none(L->dhu),
                                                view_or_none(L->dc)));
        for (uint32_t t = T; !one_dispatch && t-- > 0;) {
            enn_view dh = step_view(L->dhs, t + 1, su), dh_prev = step_view(L->dhs, t, su);
            enn_view dP_t = step_view(L->dpre, t, sw);
            if (s->kind == ENN_MODEL_RNN)
                ENN_TRY(enn_activation_backward(rec, ENN_ACT_TANH, (uint64_t)B * u, step_view(L->hs, t + 1, su), dh,
                                                0.0f, dP_t));
            else if (s->kind == ENN_MODEL_LSTM)
                ENN_TRY(enn_lstm_gates_backward(rec, B, u, step_view(L->pre, t, sw), step_view(L->cs, t, su),
                                                step_view(L->cs, t + 1, su), dh, enn_view_of(L->dc), dP_t));
            else
                ENN_TRY(enn_gru_gates_backward(rec, B, u, step_view(L->pre, t, sw), step_view(L->hu, t, sw),
                                               step_view(L->hs, t, su), dh, dh_prev, dP_t, step_view(L->dhu, t, sw)));
            ENN_TRY(gemm(rec, "rnn.recurrent_backward", dh_prev, step_view(drec, t, sw), 0, L->U, 1, B, u, w, 1.0f,
                         NO_VIEW, ENN_ACT_NONE));
        }
        /* Weight gradients, each one GEMM over all steps. */
        enn_view X = layer_input(s, i);
        ENN_TRY(gemm(rec, "rnn.dU", L->dU, enn_view_of(L->hs), 1, enn_view_of(drec), 0, u, w, R, 1.0f, NO_VIEW,
                     ENN_ACT_NONE));
        ENN_TRY(gemm(rec, "rnn.dW", L->dW, X, 1, enn_view_of(L->dpre), 0, L->in, w, R, 1.0f, NO_VIEW, ENN_ACT_NONE));
        ENN_TRY(enn_sum_rows(rec, R, w, enn_view_of(L->dpre), 1.0f, 1.0f, L->db));
        if (s->kind == ENN_MODEL_GRU) {
            ENN_TRY(enn_sum_rows(rec, R, w, enn_view_of(L->dhu), 1.0f, 0.0f, enn_view_of(L->db_rec)));
            ENN_TRY(enn_record_copy(rec, L->db_rec, 0, L->db.buf, L->b_rec_offset, (uint64_t)w * 4));
        }
        /* The gradient of the layer's input: the layer below's dh_1..dh_T, or dx. */
        if (i > 0) {
            const enn_rnn_layer *below = &s->layer[i - 1];
            ENN_TRY(gemm(rec, "rnn.dinput", step_view(below->dhs, 1, slab(s, below->units)), enn_view_of(L->dpre), 0,
                         L->W, 1, R, L->in, w, 0.0f, NO_VIEW, ENN_ACT_NONE));
        } else if (want_dx) {
            ENN_TRY(gemm(rec, "rnn.dx", enn_view_of(s->dx), enn_view_of(L->dpre), 0, L->W, 1, R, L->in, w, 0.0f,
                         NO_VIEW, ENN_ACT_NONE));
        }
    }
    return ENN_OK;
}
