/* The Engram cell over a sequence: see enn_cell.h for the structure of both passes. */
#include "models/enn_cell.h"

#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "ops/cosine_attention.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/gemm_split_k.h"
#include "ops/hebbian_trace.h"
#include "ops/layer_norm.h"
#include "ops/memory_step.h"
#include "ops/recurrence.h"
#include "ops/reduce.h"

#define TRACE_CLIP 0.1f
#define LN_EPS 1e-6f
/* Noise streams of the trace are (step << 20) + t: distinct per training step and time
 * step, apart from dropout's and initialisation's streams. */
#define NOISE_STREAM(step, t) (((uint64_t)(step) << 20) + (t))

uint32_t enn_cell_padded_batch(uint32_t B, uint32_t h)
{
    /* A step's slice of a [T, Bp, w] buffer starts at t * Bp * w * 4 bytes; w is h or 3h,
     * so Bp * h must be a multiple of ENN_VIEW_ALIGN / 4 (3 is coprime with it). */
    uint32_t q = ENN_VIEW_ALIGN / 4, g = h;
    for (uint32_t a = q; a;) { uint32_t r = g % a; g = a; a = r; } /* g = gcd(h, q) */
    uint32_t step = q / g;
    return (B + step - 1) / step * step;
}

uint64_t enn_cell_row_slab(const enn_cell *c, uint32_t width) { return enn_view_round((uint64_t)c->Bp * width * 4); }
uint64_t enn_cell_trace_slab(const enn_cell *c) { return enn_view_round((uint64_t)c->nH * c->N * c->h * 4); }

enn_view enn_cell_step(const enn_buffer *seq, uint32_t t, uint64_t slab_bytes)
{
    return enn_view_at(seq, (VkDeviceSize)t * slab_bytes);
}

/* With recompute interval K, the stored traces are H_0, H_kK-1 and H_kK (k >= 1), in that
 * order, then H_T in a slab of its own; the others live in a ring of K slabs. */
static int trace_stored(const enn_cell *c, uint32_t i, uint32_t T)
{
    uint32_t K = c->recompute;
    return !K || i == T || i % K == 0 || (i + 1) % K == 0;
}

enn_view enn_cell_trace(const enn_cell *c, uint32_t i, uint32_t T)
{
    uint64_t str = enn_cell_trace_slab(c);
    uint32_t K = c->recompute;
    if (!K) return enn_cell_step(c->H, i, str);
    if (i == T) return enn_cell_step(c->H, 2 * ((c->T + 1) / K) + 1, str);
    if (i % K == 0) return enn_cell_step(c->H, 2 * (i / K), str);
    if ((i + 1) % K == 0) return enn_cell_step(c->H, 2 * ((i + 1) / K) - 1, str);
    return enn_cell_step(c->H_ring, i % K, str);
}

static enn_view tensor_view(const enn_layout *l, const enn_buffer *buf, const char *name)
{
    const enn_tensor_info *t = enn_layout_find(l, name);
    return t ? enn_view_at(buf, t->offset) : (enn_view){0};
}

static enn_status alloc(enn_cell *c, enn_buffer **out, uint64_t bytes)
{
    /* Out of device memory: which part of the model, this buffer's size, what it holds so far. */
    enn_status made = enn_buffer_create(c->ctx, bytes, out);
    if (made != ENN_OK)
        return enn_error(made, "the ENN cell's activations (a buffer of %llu bytes; %llu bytes held before it): %s",
                         (unsigned long long)bytes, (unsigned long long)c->activation_bytes, enn_last_error());
    c->activation_bytes += enn_view_round(bytes);
    return ENN_OK;
}

enn_status enn_cell_create(enn_context *ctx, const enn_model_config *cfg, const enn_layout *l,
                           const enn_buffer *params, const enn_buffer *grads, uint32_t d, enn_cell *c)
{
    memset(c, 0, sizeof *c);
    const enn_cell_config *e = &cfg->cell;
    c->ctx = ctx;
    c->d = d;
    c->h = e->hidden;
    c->N = e->memory_slots;
    c->T = cfg->max_seq_len;
    c->B = cfg->max_batch;
    c->Bp = enn_cell_padded_batch(c->B, c->h);
    c->per_sample = e->trace_mode == ENN_TRACE_PER_SAMPLE;
    c->nH = c->per_sample ? c->Bp : 1;
    c->eta = e->hebbian_rate;
    c->alpha = e->trace_scale;
    c->tau_e = e->temperature / (1.0f + 10.0f * e->sparsity);
    c->noise = e->noise && e->noise_std > 0;
    c->noise_std = e->noise_std;
    c->clip = TRACE_CLIP;
    c->ln_eps = LN_EPS;
    c->layer_norm = e->layer_norm;
    c->stop_gradient = e->trace_gradient == ENN_TRACE_GRADIENT_STOP;
    c->seed = cfg->seed;
    c->recompute = e->recompute_interval;

#define PARAM(field, name) c->field = tensor_view(l, params, name), c->d##field = tensor_view(l, grads, name)
    PARAM(W_z, "W_z"); PARAM(b_z, "b_z"); PARAM(M, "M"); PARAM(W_u, "W_u"); PARAM(b_u, "b_u");
    PARAM(W_o, "W_o"); PARAM(b_o, "b_o");
    if (c->layer_norm) {
        PARAM(ln1_gain, "ln1.gain"); PARAM(ln1_bias, "ln1.bias");
        PARAM(ln2_gain, "ln2.gain"); PARAM(ln2_bias, "ln2.bias");
    }
#undef PARAM

    uint32_t h = c->h, T = c->T, N = c->N;
    uint64_t block = (uint64_t)h * 3 * h * 4;
    int any_staged = 0;
    for (int k = 0; k < 3; k++) {
        c->W_u_staged[k] = (c->W_u.offset + k * block) % ENN_VIEW_ALIGN != 0;
        any_staged |= c->W_u_staged[k];
    }
    if (any_staged) {
        ENN_TRY(alloc(c, &c->W_u_scratch, 3 * enn_view_round(block)));
        ENN_TRY(alloc(c, &c->dW_u_scratch, 3 * enn_view_round(block)));
    }
    for (int k = 0; k < 3; k++) {
        c->W_u_block[k] = c->W_u_staged[k] ? enn_view_at(c->W_u_scratch, k * enn_view_round(block))
                                           : enn_view_at(params, c->W_u.offset + k * block);
        c->dW_u_block[k] = c->W_u_staged[k] ? enn_view_at(c->dW_u_scratch, k * enn_view_round(block))
                                            : enn_view_at(grads, c->dW_u.offset + k * block);
    }

    uint64_t sh = enn_cell_row_slab(c, h), s3h = enn_cell_row_slab(c, 3 * h), str = enn_cell_trace_slab(c);
    uint64_t sa = enn_view_round((uint64_t)c->Bp * N * 4), srow = enn_view_round((uint64_t)c->Bp * 4);
    ENN_TRY(alloc(c, &c->x, (uint64_t)T * c->Bp * (d ? d : 1) * 4));
    ENN_TRY(alloc(c, &c->zr, T * sh));
    if (c->layer_norm) {
        ENN_TRY(alloc(c, &c->z, T * sh));
        ENN_TRY(alloc(c, &c->ln1_mean, T * srow));
        ENN_TRY(alloc(c, &c->ln1_rstd, T * srow));
        ENN_TRY(alloc(c, &c->ln2_mean, (uint64_t)T * c->Bp * 4)); /* contiguous: see enn_recurrence_forward */
        ENN_TRY(alloc(c, &c->ln2_rstd, (uint64_t)T * c->Bp * 4));
        ENN_TRY(alloc(c, &c->hp, T * sh));
    }
    ENN_TRY(alloc(c, &c->a, T * sa));
    ENN_TRY(alloc(c, &c->m, T * sh));
    if (c->recompute) {
        ENN_TRY(alloc(c, &c->H, (2 * ((T + 1) / c->recompute) + 2) * str));
        ENN_TRY(alloc(c, &c->H_ring, (uint64_t)c->recompute * str));
    } else {
        ENN_TRY(alloc(c, &c->H, (T + 1) * str));
    }
    ENN_TRY(alloc(c, &c->u, T * s3h));
    ENN_TRY(alloc(c, &c->hs, (T + 1) * sh));
    ENN_TRY(alloc(c, &c->dhs, (T + 1) * sh));
    ENN_TRY(alloc(c, &c->dhp, T * sh));
    ENN_TRY(alloc(c, &c->du, T * s3h));
    ENN_TRY(alloc(c, &c->dz, T * sh));
    if (c->layer_norm) ENN_TRY(alloc(c, &c->dzr, T * sh));
    ENN_TRY(alloc(c, &c->dm, T * sh));
    ENN_TRY(alloc(c, &c->dx, (uint64_t)T * c->Bp * (d ? d : 1) * 4));
    ENN_TRY(alloc(c, &c->dH[0], str));
    ENN_TRY(alloc(c, &c->dH[1], str));
    if (c->per_sample) {
        ENN_TRY(alloc(c, &c->dM_samples[0], str));
        ENN_TRY(alloc(c, &c->dM_samples[1], str));
    }
    enn_memory_shape ms = {c->Bp, N, h, c->per_sample};
    ENN_TRY(alloc(c, &c->attention_ws, enn_cosine_attention_workspace_bytes(ms)));
    /* The weight gradients' split-K workspace (GPUs), sized for the longest sequence. */
    uint64_t ws = 0;
    uint32_t R = T * c->Bp, shapes[3][2] = {{3 * h, h}, {h, 3 * h}, {d ? d : 1, h}};
    for (int i = 0; i < 3; i++) {
        uint32_t s = enn_gemm_split_k_count_for(ctx, shapes[i][0], shapes[i][1], R);
        uint64_t b = s > 1 ? enn_gemm_split_k_workspace_bytes(shapes[i][0], shapes[i][1], s) : 0;
        if (b > ws) ws = b;
    }
    if (ws) ENN_TRY(alloc(c, &c->split_ws, ws));
    if (!c->layer_norm) {
        c->z = c->zr;
        c->dzr = c->dz;
    }
    /* Padding rows must start (and stay) zero in every buffer: one fill at creation. */
    enn_recorder *rec;
    ENN_TRY(enn_recorder_create(ctx, &rec));
    enn_status s = enn_recorder_begin(rec);
    enn_buffer *all[] = {c->x, c->zr, c->layer_norm ? c->z : NULL, c->a, c->m, c->H, c->H_ring, c->u, c->hs, c->dhs,
                         c->layer_norm ? c->hp : NULL, c->dhp, c->du, c->dz, c->layer_norm ? c->dzr : NULL,
                         c->dm, c->dx, c->dH[0], c->dH[1], c->ln2_mean, c->ln2_rstd};
    for (size_t i = 0; i < sizeof all / sizeof *all && s == ENN_OK; i++)
        if (all[i]) s = enn_record_fill(rec, all[i], 0, 0, 0);
    if (s == ENN_OK) s = enn_recorder_run(rec);
    enn_recorder_destroy(rec);
    return s;
}

void enn_cell_destroy(enn_cell *c)
{
    if (!c->ctx) return;
    enn_buffer *all[] = {c->W_u_scratch, c->dW_u_scratch, c->x, c->zr, c->layer_norm ? c->z : NULL,
                         c->ln1_mean, c->ln1_rstd, c->ln2_mean, c->ln2_rstd, c->a, c->m, c->H, c->u,
                         c->layer_norm ? c->hp : NULL, c->hs, c->dhs, c->dhp, c->du, c->dz,
                         c->layer_norm ? c->dzr : NULL, c->dm, c->dx, c->dH[0], c->dH[1], c->dM_samples[0],
                         c->dM_samples[1], c->attention_ws, c->noise_buf, c->H_ring, c->split_ws};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) enn_buffer_destroy(c->ctx, all[i]);
    memset(c, 0, sizeof *c);
}

/* The engine's one way to call the GEMM. */
static enn_status gemm(enn_recorder *rec, const char *name, enn_view c_out, enn_view a, int ta, enn_view b, int tb,
                       uint32_t m, uint32_t n, uint32_t k, float beta, enn_view bias, enn_activation act)
{
    enn_gemm_desc d = enn_gemm_desc_packed(name, c_out, a, ta, b, tb, m, n, k, beta, bias, act);
    return enn_gemm(rec, &d);
}

static const enn_view NO_VIEW = {0};

static enn_view view_or_none(const enn_buffer *b) { return b ? enn_view_of(b) : NO_VIEW; }

/* A sequence buffer for the recurrence op: step t at t * slab bytes (none: NULL). */
static enn_recurrence_seq seq(const enn_buffer *b, uint64_t slab)
{
    return (enn_recurrence_seq){view_or_none(b), b ? slab : 0};
}

static enn_recurrence_shape recurrence_shape(const enn_cell *c, uint32_t T, uint32_t B)
{
    return (enn_recurrence_shape){.T = T, .B = B, .Bp = c->Bp, .h = c->h, .layer_norm = c->layer_norm,
                                  .eps = c->ln_eps};
}

/* A weight gradient dW = X^T dY (+ beta dW) over all m-wide rows of X and n-wide rows
 * of dY: few output tiles and a long K, so split-K on GPUs. */
static enn_status weight_gradient(const enn_cell *c, enn_recorder *rec, const char *name, enn_view dW, enn_view X,
                                  enn_view dY, uint32_t m, uint32_t n, uint32_t rows, float beta)
{
    enn_gemm_desc d = enn_gemm_desc_packed(name, dW, X, 1, dY, 0, m, n, rows, beta, NO_VIEW, ENN_ACT_NONE);
    uint32_t splits = c->split_ws ? enn_gemm_split_k_count_for(c->ctx, m, n, rows) : 1;
    if (splits > 1) return enn_gemm_split_k(rec, &d, splits, enn_view_of(c->split_ws));
    return enn_gemm(rec, &d);
}

static enn_hebbian_params hebbian_params(const enn_cell *c, uint64_t step, uint32_t t)
{
    enn_hebbian_params p = {.eta = c->eta, .clip = c->clip};
    if (c->noise_buffer_set)
        p.noise = (enn_trace_noise){.mode = ENN_NOISE_BUFFER, .xi = enn_cell_step(c->noise_buf, t, enn_cell_trace_slab(c))};
    else if (c->noise)
        p.noise = (enn_trace_noise){.mode = ENN_NOISE_PHILOX, .sigma = c->noise_std, .seed = c->seed,
                                    .stream = NOISE_STREAM(step, t)};
    return p;
}

static enn_status check_sizes(const enn_cell *c, const char *fn, uint32_t T, uint32_t B)
{
    if (!T || T > c->T || !B || B > c->B)
        return enn_error(ENN_ERROR_SHAPE, "%s: T=%u, B=%u; the model was made for 1..%u steps and 1..%u samples", fn, T,
                         B, c->T, c->B);
    return ENN_OK;
}

/* W_u's row blocks whose offsets are not view boundaries are copied to aligned scratch. */
static enn_status stage_W_u(enn_cell *c, enn_recorder *rec)
{
    uint64_t block = (uint64_t)c->h * 3 * c->h * 4;
    for (int k = 0; k < 3; k++)
        if (c->W_u_staged[k])
            ENN_TRY(enn_record_copy(rec, c->W_u.buf, c->W_u.offset + k * block, c->W_u_scratch,
                                    k * enn_view_round(block), block));
    return ENN_OK;
}

enn_status enn_cell_forward(enn_cell *c, enn_recorder *rec, uint32_t T, uint32_t B, uint64_t step)
{
    ENN_TRY(check_sizes(c, "enn_cell_forward", T, B));
    const uint32_t h = c->h, N = c->N, R = T * c->Bp;
    const uint64_t sh = enn_cell_row_slab(c, h), s3h = enn_cell_row_slab(c, 3 * h);
    const uint64_t sa = enn_view_round((uint64_t)c->Bp * N * 4);
    ENN_TRY(stage_W_u(c, rec));

    /* zr = ReLU(x W_z + b_z), z = LayerNorm1(zr): all steps at once. */
    ENN_TRY(gemm(rec, "enn.input", enn_view_of(c->zr), enn_view_of(c->x), 0, c->W_z, 0, R, h, c->d, 0.0f, c->b_z,
                 ENN_ACT_RELU));
    if (c->layer_norm)
        ENN_TRY(enn_layer_norm_forward(rec, enn_view_of(c->z), enn_view_of(c->ln1_mean), enn_view_of(c->ln1_rstd),
                                       enn_view_of(c->zr), c->ln1_gain, c->ln1_bias, R, h, c->ln_eps));

    /* The memory path depends on z and H only: a scan of its own. */
    enn_memory_shape ms = {B, N, h, c->per_sample};
    for (uint32_t t = 0; t < T; t++) {
        enn_hebbian_params hp = hebbian_params(c, step, t);
        ENN_TRY(enn_memory_step_forward(rec, ms, enn_cell_step(c->a, t, sa), enn_cell_step(c->m, t, sh),
                                        enn_cell_trace(c, t + 1, T), enn_cell_step(c->z, t, sh), c->M,
                                        enn_cell_trace(c, t, T), c->alpha, c->tau_e, &hp));
    }

    /* The [z, m] part of the integrator for all steps: u = z W_u[z] + m W_u[m] + b_u. */
    ENN_TRY(gemm(rec, "enn.integrate_zm", enn_view_of(c->u), enn_view_of(c->z), 0, c->W_u_block[0], 0, R, 3 * h, h,
                 0.0f, c->b_u, ENN_ACT_NONE));
    ENN_TRY(gemm(rec, "enn.integrate_zm", enn_view_of(c->u), enn_view_of(c->m), 0, c->W_u_block[1], 0, R, 3 * h, h,
                 1.0f, NO_VIEW, ENN_ACT_NONE));

    /* Only the h-dependent part is sequential: rows are independent in it, so one
     * dispatch carries every row through all steps (enn_recurrence_forward). */
    enn_recurrence_shape rs = recurrence_shape(c, T, B);
    ENN_TRY(enn_recurrence_forward(rec, &rs, seq(c->u, s3h), seq(c->hs, sh), seq(c->layer_norm ? c->hp : NULL, sh),
                                   view_or_none(c->ln2_mean), view_or_none(c->ln2_rstd), c->W_u_block[2], c->W_o,
                                   c->b_o, c->ln2_gain, c->ln2_bias));
    return ENN_OK;
}

enn_status enn_cell_backward(enn_cell *c, enn_recorder *rec, uint32_t T, uint32_t B, uint64_t step, int want_dx)
{
    ENN_TRY(check_sizes(c, "enn_cell_backward", T, B));
    const uint32_t h = c->h, N = c->N, R = T * c->Bp;
    const uint64_t sh = enn_cell_row_slab(c, h), s3h = enn_cell_row_slab(c, 3 * h), str = enn_cell_trace_slab(c);
    const uint64_t sa = enn_view_round((uint64_t)c->Bp * N * 4);

    /* Rows the loop below does not write must hold zero gradient (a smaller batch than
     * the last one leaves stale rows otherwise). */
    ENN_TRY(enn_record_fill(rec, c->dhp, 0, 0, 0));
    ENN_TRY(enn_record_fill(rec, c->du, 0, 0, 0));
    ENN_TRY(enn_record_fill(rec, c->dhs, 0, sh, 0));

    /* The h-dependent part in reverse, one dispatch; then layer norm 2's parameter
     * gradients over all steps' rows at once (padding rows carry zero gradient). */
    enn_recurrence_shape rs = recurrence_shape(c, T, B);
    ENN_TRY(enn_recurrence_backward(rec, &rs, seq(c->dhs, sh), seq(c->dhp, sh), seq(c->du, s3h), seq(c->u, s3h),
                                    seq(c->layer_norm ? NULL : c->hs, sh), seq(c->layer_norm ? c->hp : NULL, sh),
                                    view_or_none(c->ln2_mean), view_or_none(c->ln2_rstd), c->W_u_block[2], c->W_o,
                                    c->ln2_gain));
    if (c->layer_norm)
        ENN_TRY(enn_layer_norm_backward_params(rec, c->dln2_gain, c->dln2_bias, enn_cell_step(c->dhs, 1, sh),
                                               enn_view_of(c->hp), enn_view_of(c->ln2_mean),
                                               enn_view_of(c->ln2_rstd), R, h, 1.0f));

    /* Weight gradients of the loop, each one GEMM over all steps. */
    ENN_TRY(weight_gradient(c, rec, "enn.dW_o", c->dW_o, enn_view_of(c->u), enn_view_of(c->dhp), 3 * h, h, R, 1.0f));
    ENN_TRY(enn_sum_rows(rec, R, h, enn_view_of(c->dhp), 1.0f, 1.0f, c->db_o));
    enn_view rows_in[3] = {enn_view_of(c->z), enn_view_of(c->m), enn_view_of(c->hs)};
    for (int k = 0; k < 3; k++)
        ENN_TRY(weight_gradient(c, rec, "enn.dW_u", c->dW_u_block[k], rows_in[k], enn_view_of(c->du), h, 3 * h, R,
                                c->W_u_staged[k] ? 0.0f : 1.0f));
    ENN_TRY(enn_sum_rows(rec, R, 3 * h, enn_view_of(c->du), 1.0f, 1.0f, c->db_u));
    uint64_t block = (uint64_t)h * 3 * h * 4;
    for (int k = 0; k < 3; k++)
        if (c->W_u_staged[k])
            ENN_TRY(enn_record_copy(rec, c->dW_u_scratch, k * enn_view_round(block), c->dW_u.buf,
                                    c->dW_u.offset + k * block, block));
    /* Gradients reaching z and m directly, for all steps. */
    ENN_TRY(gemm(rec, "enn.dz", enn_view_of(c->dz), enn_view_of(c->du), 0, c->W_u_block[0], 1, R, h, 3 * h, 0.0f,
                 NO_VIEW, ENN_ACT_NONE));
    ENN_TRY(gemm(rec, "enn.dm", enn_view_of(c->dm), enn_view_of(c->du), 0, c->W_u_block[1], 1, R, h, 3 * h, 0.0f,
                 NO_VIEW, ENN_ACT_NONE));

    /* Reverse scan over the memory path, two dispatches per step. The carry dH[cur] is
     * g_t, the clip-masked gradient reaching step t's trace update (zero for the last
     * step: nothing reads the final trace); each step writes g_t-1 into the other buffer,
     * and step 0 writes the gradient of H_0. E is recomputed from M and H_t on the fly. */
    enn_memory_shape ms = {B, N, h, c->per_sample};
    int exact = !c->stop_gradient, cur = 0, dcur = 0;
    if (exact) ENN_TRY(enn_record_fill(rec, c->dH[cur], 0, 0, 0));
    if (c->per_sample) ENN_TRY(enn_record_fill(rec, c->dM_samples[0], 0, 0, 0));
    /* With recomputation, segment by segment from the last: first the segment's traces
     * that were not stored, from its stored first one (a trace update per step, bit for
     * bit the forward pass's), then its steps' backward. */
    uint32_t seg = c->recompute ? c->recompute : T;
    for (uint32_t k = (T + seg - 1) / seg; k-- > 0;) {
        uint32_t s0 = k * seg, s1 = s0 + seg < T ? s0 + seg : T;
        for (uint32_t i = s0 + 1; i < s1; i++) {
            if (trace_stored(c, i, T)) continue;
            enn_hebbian_params hp = hebbian_params(c, step, i - 1);
            ENN_TRY(enn_hebbian_trace_forward(rec, ms, enn_cell_trace(c, i, T), enn_cell_trace(c, i - 1, T),
                                              enn_cell_step(c->a, i - 1, sa), enn_cell_step(c->z, i - 1, sh), &hp));
        }
        for (uint32_t t = s1; t-- > s0;) {
            enn_memory_backward_step st = {
                .z = enn_cell_step(c->z, t, sh), .a = enn_cell_step(c->a, t, sa), .H = enn_cell_trace(c, t, T),
                .dm = enn_cell_step(c->dm, t, sh), .M = c->M, .dz = enn_cell_step(c->dz, t, sh),
                .dM = c->dM, .dM_samples = view_or_none(c->dM_samples[dcur]),
                .dM_samples_next = view_or_none(c->dM_samples[1 - dcur]), .workspace = enn_view_of(c->attention_ws),
                .prev_hebbian = {.eta = c->eta, .clip = c->clip}};
            if (exact) {
                st.g = enn_view_of(c->dH[cur]);
                st.g_prev = enn_view_of(c->dH[1 - cur]);
                if (t > 0) {
                    st.prev_z = enn_cell_step(c->z, t - 1, sh);
                    st.prev_a = enn_cell_step(c->a, t - 1, sa);
                    st.prev_H = enn_cell_trace(c, t - 1, T);
                    st.prev_hebbian = hebbian_params(c, step, t - 1);
                }
                cur = 1 - cur;
            }
            ENN_TRY(enn_memory_step_backward(rec, ms, &st, c->alpha, c->tau_e));
            dcur = 1 - dcur;
        }
    }
    /* Per-sample trace: the samples' memory gradients, summed in order. */
    if (c->per_sample)
        ENN_TRY(enn_sum_rows(rec, B, N * h, enn_view_of(c->dM_samples[dcur]), 1.0f, 1.0f, c->dM));
    /* dH[cur] is now the gradient of H_0; keep it in dH[0]. In stop mode H is a
     * constant input: its gradient is zero. */
    if (cur != 0) ENN_TRY(enn_record_copy(rec, c->dH[1], 0, c->dH[0], 0, str));
    if (c->stop_gradient) ENN_TRY(enn_record_fill(rec, c->dH[0], 0, 0, 0));

    /* Layer norm 1, the ReLU and W_z for all steps at once. */
    if (c->layer_norm)
        ENN_TRY(enn_layer_norm_backward(rec, enn_view_of(c->dzr), c->dln1_gain, c->dln1_bias, enn_view_of(c->dz),
                                        enn_view_of(c->zr), c->ln1_gain, enn_view_of(c->ln1_mean),
                                        enn_view_of(c->ln1_rstd), R, h, 0.0f, 1.0f));
    ENN_TRY(enn_activation_backward(rec, ENN_ACT_RELU, (uint64_t)R * h, enn_view_of(c->zr), enn_view_of(c->dzr), 0.0f,
                                    enn_view_of(c->dzr)));
    ENN_TRY(weight_gradient(c, rec, "enn.dW_z", c->dW_z, enn_view_of(c->x), enn_view_of(c->dzr), c->d, h, R, 1.0f));
    ENN_TRY(enn_sum_rows(rec, R, h, enn_view_of(c->dzr), 1.0f, 1.0f, c->db_z));
    if (want_dx)
        ENN_TRY(gemm(rec, "enn.dx", enn_view_of(c->dx), enn_view_of(c->dzr), 0, c->W_z, 1, R, c->d, h, 0.0f, NO_VIEW,
                     ENN_ACT_NONE));
    return ENN_OK;
}
