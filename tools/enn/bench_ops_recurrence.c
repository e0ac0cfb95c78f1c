/* enn bench ops: the ENN cell's h-dependent recurrence, one dispatch per pass against the
 * per-step loop it replaces. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_cpu.h"
#include "bench_ops_case.h"
#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/layer_norm.h"
#include "ops/recurrence.h"

/* The cell's h-dependent loop with layer norm: one dispatch per pass (enn_recurrence) and,
 * as its peer in the same run (recur_*_loop), the per-step loop it replaces (3 dispatches a step forward:
 * two GEMMs and a layer norm; 6 backward), both checked against one CPU loop. Here Bp = B
 * and B h 4 is a multiple of 256, so slabs are dense and mean/rstd [T*B] contiguous; the
 * per-step loop keeps its statistics in per-step slabs, as enn_cell does. Each run first
 * copies the inputs it updates in place (u, dhs) from pristine copies, so runs repeat. */
typedef struct recur_state {
    uint32_t T, B, h;
    uint64_t sh, su, srow; /* slab bytes: h-wide, 3h-wide, per-step statistics */
    float *u_in, *h0, *W_uh, *W_o, *b_o, *gain, *bias, *dhs_in;
    float *u, *hs, *hp, *mean, *rstd, *dhs, *dhp, *du;
    enn_buffer *bu_in, *bW_uh, *bW_o, *bb_o, *bgain, *bbias, *bdhs_in, *bu, *bhs, *bhp, *bmean, *brstd, *bdhs, *bdhp,
        *bdu, *bmean_s, *brstd_s, *bdgain, *bdbias;
} recur_state;

static enn_recurrence_shape recur_shape(const recur_state *s)
{
    return (enn_recurrence_shape){.T = s->T, .B = s->B, .Bp = s->B, .h = s->h, .layer_norm = 1, .eps = 1e-6f};
}
static enn_recurrence_seq recur_seq(const enn_buffer *b, uint64_t slab) { return (enn_recurrence_seq){V(b), slab}; }

static enn_status rec_recur_fwd(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    enn_recurrence_shape shape = recur_shape(s);
    ENN_TRY(enn_record_copy(rec, s->bu_in, 0, s->bu, 0, s->T * s->su));
    return enn_recurrence_forward(rec, &shape, recur_seq(s->bu, s->su), recur_seq(s->bhs, s->sh),
                                  recur_seq(s->bhp, s->sh), V(s->bmean), V(s->brstd), V(s->bW_uh), V(s->bW_o),
                                  V(s->bb_o), V(s->bgain), V(s->bbias));
}
static enn_status recur_gemm(enn_recorder *rec, enn_view c, enn_view a, enn_view b, int tb, uint32_t m, uint32_t n,
                             uint32_t k, float beta, enn_view bias, enn_activation act)
{
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = a, d.b = b, d.c = c, d.bias = bias, d.m = m, d.n = n, d.k = k, d.trans_b = tb, d.beta = beta, d.act = act;
    d.name = "recurrence_steps";
    return enn_gemm(rec, &d);
}
static enn_status rec_recur_fwd_steps(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    ENN_TRY(enn_record_copy(rec, s->bu_in, 0, s->bu, 0, s->T * s->su));
    for (uint32_t t = 0; t < s->T; t++) {
        enn_view u_t = enn_view_at(s->bu, t * s->su), h_t = enn_view_at(s->bhs, t * s->sh);
        enn_view hp_t = enn_view_at(s->bhp, t * s->sh), h_next = enn_view_at(s->bhs, (t + 1) * s->sh);
        ENN_TRY(recur_gemm(rec, u_t, h_t, V(s->bW_uh), 0, s->B, 3 * s->h, s->h, 1.0f, (enn_view){0}, ENN_ACT_RELU));
        ENN_TRY(recur_gemm(rec, hp_t, u_t, V(s->bW_o), 0, s->B, s->h, 3 * s->h, 0.0f, V(s->bb_o), ENN_ACT_RELU));
        ENN_TRY(enn_layer_norm_forward(rec, h_next, enn_view_at(s->bmean_s, t * s->srow),
                                       enn_view_at(s->brstd_s, t * s->srow), hp_t, V(s->bgain), V(s->bbias), s->B,
                                       s->h, 1e-6f));
    }
    return ENN_OK;
}
static void cpu_recur_fwd(void *p)
{
    recur_state *s = p;
    memcpy(s->u, s->u_in, (size_t)s->T * s->B * 3 * s->h * 4);
    memcpy(s->hs, s->h0, (size_t)s->B * s->h * 4);
    cpu_recurrence_forward(s->T, s->B, s->h, s->W_uh, s->W_o, s->b_o, s->gain, s->bias, 1e-6f, s->u, s->hs, s->hp,
                           s->mean, s->rstd);
}
static enn_status rec_recur_bwd(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    enn_recurrence_shape shape = recur_shape(s);
    ENN_TRY(enn_record_copy(rec, s->bdhs_in, 0, s->bdhs, 0, (s->T + 1) * s->sh));
    return enn_recurrence_backward(rec, &shape, recur_seq(s->bdhs, s->sh), recur_seq(s->bdhp, s->sh),
                                   recur_seq(s->bdu, s->su), recur_seq(s->bu, s->su), recur_seq(s->bhs, s->sh),
                                   recur_seq(s->bhp, s->sh), V(s->bmean), V(s->brstd), V(s->bW_uh), V(s->bW_o),
                                   V(s->bgain));
}
/* As enn_cell's loop (which also sums the layer norm's parameter gradients per step). */
static enn_status rec_recur_bwd_steps(enn_recorder *rec, void *p)
{
    recur_state *s = p;
    uint32_t B = s->B, h = s->h;
    ENN_TRY(enn_record_copy(rec, s->bdhs_in, 0, s->bdhs, 0, (s->T + 1) * s->sh));
    for (uint32_t t = s->T; t-- > 0;) {
        enn_view g = enn_view_at(s->bdhs, (t + 1) * s->sh), dhp_t = enn_view_at(s->bdhp, t * s->sh);
        enn_view u_t = enn_view_at(s->bu, t * s->su), du_t = enn_view_at(s->bdu, t * s->su);
        enn_view hp_t = enn_view_at(s->bhp, t * s->sh);
        ENN_TRY(enn_layer_norm_backward(rec, dhp_t, V(s->bdgain), V(s->bdbias), g, hp_t, V(s->bgain),
                                        enn_view_at(s->bmean_s, t * s->srow), enn_view_at(s->brstd_s, t * s->srow), B,
                                        h, 0.0f, 1.0f));
        ENN_TRY(enn_activation_backward(rec, ENN_ACT_RELU, (uint64_t)B * h, hp_t, dhp_t, 0.0f, dhp_t));
        ENN_TRY(recur_gemm(rec, du_t, dhp_t, V(s->bW_o), 1, B, 3 * h, h, 0.0f, (enn_view){0}, ENN_ACT_NONE));
        ENN_TRY(enn_activation_backward(rec, ENN_ACT_RELU, (uint64_t)B * 3 * h, u_t, du_t, 0.0f, du_t));
        ENN_TRY(recur_gemm(rec, enn_view_at(s->bdhs, t * s->sh), du_t, V(s->bW_uh), 1, B, h, 3 * h, 1.0f, (enn_view){0},
                           ENN_ACT_NONE));
    }
    return ENN_OK;
}
static void cpu_recur_bwd(void *p)
{
    recur_state *s = p;
    memcpy(s->dhs, s->dhs_in, (size_t)(s->T + 1) * s->B * s->h * 4);
    cpu_recurrence_backward(s->T, s->B, s->h, s->W_uh, s->W_o, s->gain, s->u, s->hp, s->mean, s->rstd, s->dhs, s->dhp,
                            s->du);
}

static int recur_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    static const uint32_t shapes[][3] = {{8, 16, 32}, {28, 128, 128}}; /* T, B, h: the paper's second */
    recur_state s = {.T = shapes[i][0], .B = shapes[i][1], .h = shapes[i][2]};
    uint32_t T = s.T, B = s.B, h = s.h;
    size_t Bh = (size_t)B * h, Bw = 3 * Bh, hw = 3 * (size_t)h * h;
    s.sh = Bh * 4, s.su = Bw * 4, s.srow = enn_view_round((uint64_t)B * 4);
    float a = 1 / sqrtf((float)h), ao = 1 / sqrtf(3.0f * h);
    s.u_in = host_rand(ar, T * Bw, -1, 1); s.h0 = host_rand(ar, Bh, -1, 1);
    s.W_uh = host_rand(ar, hw, -a, a); s.W_o = host_rand(ar, hw, -ao, ao); s.b_o = host_rand(ar, h, -0.3f, 0.5f);
    s.gain = host_rand(ar, h, 0.5f, 1.5f); s.bias = host_rand(ar, h, -0.5f, 0.5f);
    s.dhs_in = host_rand(ar, (T + 1) * Bh, -1, 1);
    s.u = host_alloc(ar, T * Bw * 4); s.hs = host_alloc(ar, (T + 1) * Bh * 4); s.hp = host_alloc(ar, T * Bh * 4);
    s.mean = host_alloc(ar, (size_t)T * B * 4); s.rstd = host_alloc(ar, (size_t)T * B * 4);
    s.dhs = host_alloc(ar, (T + 1) * Bh * 4); s.dhp = host_alloc(ar, T * Bh * 4); s.du = host_alloc(ar, T * Bw * 4);
    s.bu_in = dev_buf(ar, s.u_in, T * Bw * 4); s.bW_uh = dev_buf(ar, s.W_uh, hw * 4); s.bW_o = dev_buf(ar, s.W_o, hw * 4);
    s.bb_o = dev_buf(ar, s.b_o, h * 4); s.bgain = dev_buf(ar, s.gain, h * 4); s.bbias = dev_buf(ar, s.bias, h * 4);
    s.bdhs_in = dev_buf(ar, s.dhs_in, (T + 1) * Bh * 4); s.bu = dev_buf(ar, NULL, T * Bw * 4);
    s.bhs = dev_buf(ar, NULL, (T + 1) * Bh * 4);
    s.bhp = dev_buf(ar, NULL, T * Bh * 4); s.bmean = dev_buf(ar, NULL, (size_t)T * B * 4);
    s.brstd = dev_buf(ar, NULL, (size_t)T * B * 4); s.bdhs = dev_buf(ar, NULL, (T + 1) * Bh * 4);
    s.bdhp = dev_buf(ar, NULL, T * Bh * 4); s.bdu = dev_buf(ar, NULL, T * Bw * 4);
    s.bmean_s = dev_buf(ar, NULL, T * s.srow); s.brstd_s = dev_buf(ar, NULL, T * s.srow);
    s.bdgain = dev_buf(ar, NULL, h * 4); s.bdbias = dev_buf(ar, NULL, h * 4);
    if (!arena_ok(ar)) return 1;
    if (enn_buffer_upload(ctx, s.bhs, 0, s.h0, Bh * 4)) { /* slab 0: h_0 */
        fprintf(stderr, "enn bench: %s\n", enn_last_error());
        return 1;
    }
    bench_case c = {.st = &s, .flops = 12.0 * T * B * h * h}; /* two [B,h]x[h,3h]-sized products a step */
    snprintf(c.shape, sizeof c.shape, "T%u B%u h%u", T, B, h);
    int rc = 0;
    const char *names[2][2] = {{"recur_fwd", "recur_fwd_loop"}, {"recur_bwd", "recur_bwd_loop"}};
    for (int steps = 0; steps < 2; steps++) {
        bench_case f = c;
        f.kernel = names[0][steps], f.record = steps ? rec_recur_fwd_steps : rec_recur_fwd, f.cpu = cpu_recur_fwd;
        add_check(&f, s.bhs, s.hs, (T + 1) * Bh, 0);
        add_check(&f, s.bu, s.u, T * Bw, 0);
        rc |= run_case(ctx, rec, o, &f);
    }
    /* The backward cases read the forward state both sides left (the same up to rounding). */
    for (int steps = 0; steps < 2; steps++) {
        bench_case b = c;
        b.kernel = names[1][steps], b.record = steps ? rec_recur_bwd_steps : rec_recur_bwd, b.cpu = cpu_recur_bwd;
        add_check(&b, s.bdhs, s.dhs, (T + 1) * Bh, 0);
        add_check(&b, s.bdu, s.du, T * Bw, 0);
        rc |= run_case(ctx, rec, o, &b);
    }
    return rc;
}
int bench_recurrence(enn_context *ctx, const bench_options *o)
{
    return for_shapes(ctx, o, 2, recur_one);
}
