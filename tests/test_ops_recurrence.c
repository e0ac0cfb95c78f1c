/* The ENN recurrence in one dispatch per pass (runtime/ops/recurrence.h): the double
 * reference's backward against finite differences of its forward; the device's forward,
 * backward and the layer-norm parameter reduction against the reference, over shapes with
 * and without layer norm, vec4 and scalar widths, rows per workgroup forced to 1, 3, 12 and
 * the launcher's choice, padded batches and gapped slabs whose extra rows must stay untouched. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/layer_norm.h"
#include "ops/recurrence.h"
#include "ops_testutil.h"
#include "ref_recurrence.h"

#define EPS 1e-6

static double *rand_d(uint64_t *st, size_t n, double lo, double hi)
{
    double *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)test_rand_uniform(st, lo, hi); /* fp32-exact */
    return x;
}

static double *copy_d(const double *x, size_t n)
{
    double *y = malloc((n ? n : 1) * sizeof *y);
    cr_assert(y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

/* The inputs of one problem, dense (no padding). Weights are scaled like the model's
 * initialisation (1/sqrt(fan in)) so activations stay of order one over the steps. */
typedef struct problem {
    ref_recurrence_dims d;
    double *u_in, *h0, *W_uh, *W_o, *b_o, *gain, *bias, *dhs_in; /* dhs_in: [T+1,B,h] */
} problem;

static problem make_problem(uint64_t *st, uint32_t T, uint32_t B, uint32_t h, int ln)
{
    problem p = {.d = {T, B, h, ln, EPS}};
    size_t w = 3 * (size_t)h;
    double a = 1 / sqrt((double)h), ao = 1 / sqrt((double)w);
    p.u_in = rand_d(st, (size_t)T * B * w, -1, 1);
    p.h0 = rand_d(st, (size_t)B * h, -1, 1);
    p.W_uh = rand_d(st, h * w, -a, a);
    p.W_o = rand_d(st, w * h, -ao, ao);
    p.b_o = rand_d(st, h, -0.3, 0.5);
    p.gain = rand_d(st, h, 0.5, 1.5);
    p.bias = rand_d(st, h, -0.5, 0.5);
    p.dhs_in = rand_d(st, (size_t)(T + 1) * B * h, -1, 1);
    return p;
}

static void free_problem(problem *p)
{
    free(p->u_in), free(p->h0), free(p->W_uh), free(p->W_o), free(p->b_o), free(p->gain), free(p->bias),
        free(p->dhs_in);
}

/* Everything the reference computes for a problem. */
typedef struct solution {
    double *u, *hs, *hp, *mean, *rstd, *dhs, *dhp, *du, *dgain, *dbias;
} solution;

static solution solve(const problem *p)
{
    const ref_recurrence_dims *d = &p->d;
    size_t T = d->T, B = d->B, h = d->h, w = 3 * h;
    solution s = {.u = copy_d(p->u_in, T * B * w), .hs = calloc((T + 1) * B * h, sizeof(double)),
                  .hp = calloc(T * B * h, sizeof(double)), .mean = calloc(T * B, sizeof(double)),
                  .rstd = calloc(T * B, sizeof(double)), .dhs = copy_d(p->dhs_in, (T + 1) * B * h),
                  .dhp = calloc(T * B * h, sizeof(double)), .du = calloc(T * B * w, sizeof(double)),
                  .dgain = calloc(h, sizeof(double)), .dbias = calloc(h, sizeof(double))};
    memcpy(s.hs, p->h0, B * h * sizeof(double));
    ref_recurrence_forward(d, s.u, s.hs, s.hp, s.mean, s.rstd, p->W_uh, p->W_o, p->b_o, p->gain, p->bias);
    ref_recurrence_backward(d, s.dhs, s.dhp, s.du, s.u, s.hs, s.hp, s.mean, s.rstd, p->W_uh, p->W_o, p->gain, s.dgain,
                            s.dbias);
    return s;
}

static void free_solution(solution *s)
{
    free(s->u), free(s->hs), free(s->hp), free(s->mean), free(s->rstd), free(s->dhs), free(s->dhp), free(s->du),
        free(s->dgain), free(s->dbias);
}

/* ---- the reference against finite differences ---- */

/* loss = sum_{t=1..T} <w_t, h_t> with w = dhs_in's slabs 1..T: its gradients are what the
 * backward pass returns for dhs_in slab 0 = 0 (h_0), du (the u input), sum dhp (b_o),
 * dgain, dbias, and sum_t h_t^T du_t, sum_t u_t^T dhp_t (W_uh, W_o). */
static double loss_of(const problem *p)
{
    const ref_recurrence_dims *d = &p->d;
    size_t T = d->T, B = d->B, h = d->h, w = 3 * h;
    double *u = copy_d(p->u_in, T * B * w), *hs = calloc((T + 1) * B * h, sizeof(double)),
           *hp = calloc(T * B * h, sizeof(double)), *mean = calloc(T * B, sizeof(double)),
           *rstd = calloc(T * B, sizeof(double));
    memcpy(hs, p->h0, B * h * sizeof(double));
    ref_recurrence_forward(d, u, hs, hp, mean, rstd, p->W_uh, p->W_o, p->b_o, p->gain, p->bias);
    double l = 0;
    for (size_t i = B * h; i < (T + 1) * B * h; i++) l += p->dhs_in[i] * hs[i];
    free(u), free(hs), free(hp), free(mean), free(rstd);
    return l;
}

/* Central differences, step 1e-6, on a loss of order 10: truncation ~1e-12 times the third
 * derivative, rounding ~1e-16 * 10 / 1e-6 = 1e-9; bound 1e-6 of the largest gradient. A
 * ReLU pre-activation within 1e-6 of its kink would break this; the seeds have none (the
 * bound would fail loudly, not silently). */
static void check_reference_fd(uint32_t T, uint32_t B, uint32_t h, int ln, uint64_t seed)
{
    uint64_t st = seed;
    problem p = make_problem(&st, T, B, h, ln);
    size_t w = 3 * (size_t)h;
    for (size_t i = 0; i < (size_t)B * h; i++) p.dhs_in[i] = 0; /* slab 0: no outside gradient of h_0 */
    solution s = solve(&p);
    double *db_o = calloc(h, sizeof(double)), *dW_uh = calloc(h * w, sizeof(double)),
           *dW_o = calloc(w * h, sizeof(double));
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < h; j++) {
                db_o[j] += s.dhp[(t * B + b) * h + j];
                for (size_t k = 0; k < w; k++) {
                    dW_uh[j * w + k] += s.hs[(t * B + b) * h + j] * s.du[(t * B + b) * w + k];
                    dW_o[k * h + j] += s.u[(t * B + b) * w + k] * s.dhp[(t * B + b) * h + j];
                }
            }
    struct {
        const char *name;
        double *x, *g;
        size_t n;
    } vars[] = {{"u", p.u_in, s.du, T * B * w}, {"h0", p.h0, s.dhs, (size_t)B * h}, {"b_o", p.b_o, db_o, h},
                {"W_uh", p.W_uh, dW_uh, h * w},  {"W_o", p.W_o, dW_o, w * h},         {"gain", p.gain, s.dgain, h},
                {"bias", p.bias, s.dbias, h}};
    size_t nvars = ln ? 7 : 5;
    double worst = 0, scale = 1e-3;
    const char *worst_name = "";
    for (size_t v = 0; v < nvars; v++)
        for (size_t i = 0; i < vars[v].n; i++) {
            double keep = vars[v].x[i], e = 1e-6;
            vars[v].x[i] = keep + e;
            double lp = loss_of(&p);
            vars[v].x[i] = keep - e;
            double lm = loss_of(&p);
            vars[v].x[i] = keep;
            double err = fabs((lp - lm) / (2 * e) - vars[v].g[i]);
            if (err > worst) worst = err, worst_name = vars[v].name;
            scale = fmax(scale, fabs(vars[v].g[i]));
        }
    cr_log_info("reference fd T=%u B=%u h=%u ln=%d: worst %.3g (%s), scale %.3g", T, B, h, ln, worst, worst_name, scale);
    cr_assert_lt(worst / scale, 1e-6, "T=%u B=%u h=%u ln=%d: finite-difference error %g in %s (scale %g)", T, B, h, ln,
                 worst, worst_name, scale);
    free(db_o), free(dW_uh), free(dW_o);
    free_solution(&s);
    free_problem(&p);
}

Test(recurrence, reference_matches_finite_differences)
{
    check_reference_fd(3, 2, 5, 1, 31);
    check_reference_fd(3, 2, 5, 0, 32);
    check_reference_fd(2, 3, 4, 1, 33);
}

/* ---- the device against the reference ---- */

/* Sentinels of the rows and gaps the kernels must leave alone (distinct per buffer, so the
 * layer-norm parameter reduction over padded rows has a known, non-zero contribution). */
#define SENT_U 5.0f
#define SENT_HS 6.0f
#define SENT_HP 3.0f
#define SENT_MEAN 1.0f
#define SENT_RSTD 2.0f
#define SENT_DHS 7.0f
#define SENT_DHP 8.0f
#define SENT_DU 9.0f

/* A device-layout sequence: `steps` slabs of slab_f floats, rows b < B of width floats. */
typedef struct seq_layout {
    size_t steps, B, width, slab_f;
} seq_layout;

static size_t seq_floats(seq_layout l) { return l.steps * l.slab_f; }

static float *seq_make(seq_layout l, const double *dense, float sentinel)
{
    size_t n = seq_floats(l);
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) x[i] = sentinel;
    if (dense)
        for (size_t t = 0; t < l.steps; t++)
            for (size_t i = 0; i < l.B * l.width; i++) x[t * l.slab_f + i] = (float)dense[t * l.B * l.width + i];
    return x;
}

/* Rows b < B of steps [first, steps) into a dense array. */
static float *seq_rows(seq_layout l, const float *x, size_t first)
{
    float *y = malloc(((l.steps - first) * l.B * l.width + 1) * sizeof *y);
    cr_assert(y);
    for (size_t t = first; t < l.steps; t++)
        memcpy(y + (t - first) * l.B * l.width, x + t * l.slab_f, l.B * l.width * sizeof *y);
    return y;
}

/* Floats outside rows b < B that differ from the sentinel. */
static size_t seq_touched(seq_layout l, const float *x, float sentinel)
{
    size_t bad = 0;
    for (size_t t = 0; t < l.steps; t++)
        for (size_t i = l.B * l.width; i < l.slab_f; i++) bad += x[t * l.slab_f + i] != sentinel;
    return bad;
}

static uint32_t padded_batch(uint32_t B, uint32_t h)
{
    /* the smallest Bp > B with Bp * h * 4 a multiple of 256 (as enn_cell_padded_batch) */
    uint32_t Bp = B + 1;
    while ((uint64_t)Bp * h * 4 % ENN_VIEW_ALIGN) Bp++;
    return Bp;
}

static size_t slab_floats(uint32_t Bp, uint32_t width, int gap)
{
    uint64_t bytes = enn_view_round((uint64_t)Bp * width * 4) + (gap ? ENN_VIEW_ALIGN : 0);
    return (size_t)(bytes / 4);
}

/* Error of each output, relative to the largest value of the reference tensor. */
typedef struct errors {
    double u, hs, hp, stats, dhs, dhp, du, dgain, dbias;
    size_t touched;
} errors;

static double rel(const float *got, const double *want, size_t n) { return tu_rel_error(got, want, n, 1e-30); }

static errors run_case(enn_context *ctx, enn_recorder *rec, uint32_t T, uint32_t B, uint32_t h, int ln,
                       uint32_t rows, int gap, uint64_t seed)
{
    uint64_t st = seed;
    problem p = make_problem(&st, T, B, h, ln);
    solution s = solve(&p);
    const uint32_t Bp = padded_batch(B, h), w = 3 * h;
    const size_t sh = slab_floats(Bp, h, gap), su = slab_floats(Bp, w, gap), nstat = (size_t)T * Bp;
    seq_layout lu = {T, B, w, su}, lhs = {T + 1, B, h, sh}, lhp = {T, B, h, sh};
    seq_layout lstat = {T, B, 1, Bp}; /* mean, rstd: [T * Bp] */

    float *u0 = seq_make(lu, p.u_in, SENT_U), *hs0 = seq_make(lhs, NULL, SENT_HS), *hp0 = seq_make(lhp, NULL, SENT_HP);
    float *mean0 = seq_make(lstat, NULL, SENT_MEAN), *rstd0 = seq_make(lstat, NULL, SENT_RSTD);
    float *dhs0 = seq_make(lhs, p.dhs_in, SENT_DHS), *dhp0 = seq_make(lhp, NULL, SENT_DHP),
          *du0 = seq_make(lu, NULL, SENT_DU);
    for (size_t i = 0; i < (size_t)B * h; i++) hs0[i] = (float)p.h0[i];
    float *wf[5];
    const double *wd[5] = {p.W_uh, p.W_o, p.b_o, p.gain, p.bias};
    size_t wn[5] = {(size_t)h * w, (size_t)w * h, h, h, h};
    for (int k = 0; k < 5; k++) {
        wf[k] = malloc(wn[k] * sizeof(float));
        for (size_t i = 0; i < wn[k]; i++) wf[k][i] = (float)wd[k][i];
    }
    /* The layer-norm parameter gradients accumulate (beta 1) into these. */
    float *dg0 = tu_random(&st, h, -1, 1), *db0 = tu_random(&st, h, -1, 1);

    enn_buffer *bu = tu_buffer(ctx, u0, seq_floats(lu)), *bhs = tu_buffer(ctx, hs0, seq_floats(lhs)),
               *bhp = tu_buffer(ctx, hp0, seq_floats(lhp)), *bmean = tu_buffer(ctx, mean0, nstat),
               *brstd = tu_buffer(ctx, rstd0, nstat), *bdhs = tu_buffer(ctx, dhs0, seq_floats(lhs)),
               *bdhp = tu_buffer(ctx, dhp0, seq_floats(lhp)), *bdu = tu_buffer(ctx, du0, seq_floats(lu)),
               *bdg = tu_buffer(ctx, dg0, h), *bdb = tu_buffer(ctx, db0, h);
    enn_buffer *bw[5];
    for (int k = 0; k < 5; k++) bw[k] = tu_buffer(ctx, wf[k], wn[k]);

    enn_recurrence_shape shape = {.T = T, .B = B, .Bp = Bp, .h = h, .layer_norm = ln, .eps = (float)EPS,
                                  .rows_per_group = rows};
    enn_recurrence_seq qu = {enn_view_of(bu), su * 4}, qhs = {enn_view_of(bhs), sh * 4},
                       qhp = {enn_view_of(bhp), sh * 4}, qdhs = {enn_view_of(bdhs), sh * 4},
                       qdhp = {enn_view_of(bdhp), sh * 4}, qdu = {enn_view_of(bdu), su * 4};
    enn_view none = {0};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_recurrence_forward(rec, &shape, qu, qhs, qhp, enn_view_of(bmean), enn_view_of(brstd),
                                         enn_view_of(bw[0]), enn_view_of(bw[1]), enn_view_of(bw[2]),
                                         ln ? enn_view_of(bw[3]) : none, ln ? enn_view_of(bw[4]) : none));
    ENN_ASSERT_OK(enn_recurrence_backward(rec, &shape, qdhs, qdhp, qdu, qu, qhs, qhp, enn_view_of(bmean),
                                          enn_view_of(brstd), enn_view_of(bw[0]), enn_view_of(bw[1]),
                                          ln ? enn_view_of(bw[3]) : none));
    /* The parameter reduction over all T * Bp rows (contiguous when there is no gap). */
    int params = ln && !gap;
    if (params)
        ENN_ASSERT_OK(enn_layer_norm_backward_params(rec, enn_view_of(bdg), enn_view_of(bdb),
                                                     enn_view_at(bdhs, sh * 4), enn_view_of(bhp), enn_view_of(bmean),
                                                     enn_view_of(brstd), T * Bp, h, 1.0f));
    ENN_ASSERT_OK(enn_recorder_run(rec));

    float *gu = tu_download(ctx, bu, seq_floats(lu)), *ghs = tu_download(ctx, bhs, seq_floats(lhs)),
          *ghp = tu_download(ctx, bhp, seq_floats(lhp)), *gmean = tu_download(ctx, bmean, nstat),
          *grstd = tu_download(ctx, brstd, nstat), *gdhs = tu_download(ctx, bdhs, seq_floats(lhs)),
          *gdhp = tu_download(ctx, bdhp, seq_floats(lhp)), *gdu = tu_download(ctx, bdu, seq_floats(lu)),
          *gdg = tu_download(ctx, bdg, h), *gdb = tu_download(ctx, bdb, h);

    errors e = {0};
    float *x;
    x = seq_rows(lu, gu, 0), e.u = rel(x, s.u, (size_t)T * B * w), free(x);
    x = seq_rows(lhs, ghs, 0), e.hs = rel(x, s.hs, (size_t)(T + 1) * B * h), free(x);
    x = seq_rows(lhs, gdhs, 0), e.dhs = rel(x, s.dhs, (size_t)(T + 1) * B * h), free(x);
    /* dhp, du: relative to the size of what the layer norm's backward subtracts
     * (rstd |g gain|), not to their own, which cancels to exactly zero at h = 1 (a norm
     * over one element has no gradient) while fp32 leaves rounding (fma on GPUs). */
    double gmax = 1e-30, rmax = 1.0;
    for (size_t i = 0; i < (size_t)(T + 1) * B * h; i++) gmax = fmax(gmax, fabs(s.dhs[i]));
    for (size_t i = 0; ln && i < (size_t)T * B; i++) rmax = fmax(rmax, s.rstd[i]);
    double gscale = gmax * rmax;
    x = seq_rows(lhp, gdhp, 0), e.dhp = tu_rel_error(x, s.dhp, (size_t)T * B * h, gscale), free(x);
    x = seq_rows(lu, gdu, 0), e.du = tu_rel_error(x, s.du, (size_t)T * B * w, gscale), free(x);
    e.touched = seq_touched(lu, gu, SENT_U) + seq_touched(lhs, ghs, SENT_HS) + seq_touched(lhs, gdhs, SENT_DHS) +
                seq_touched(lhp, gdhp, SENT_DHP) + seq_touched(lu, gdu, SENT_DU);
    if (ln) {
        x = seq_rows(lhp, ghp, 0), e.hp = rel(x, s.hp, (size_t)T * B * h), free(x);
        x = seq_rows(lstat, gmean, 0), e.stats = rel(x, s.mean, (size_t)T * B), free(x);
        x = seq_rows(lstat, grstd, 0), e.stats = fmax(e.stats, rel(x, s.rstd, (size_t)T * B)), free(x);
        e.touched += seq_touched(lhp, ghp, SENT_HP) + seq_touched(lstat, gmean, SENT_MEAN) +
                     seq_touched(lstat, grstd, SENT_RSTD);
    } else {
        /* Without layer norm hp, mean and rstd are not touched at all. */
        for (size_t i = 0; i < seq_floats(lhp); i++) e.touched += ghp[i] != SENT_HP;
        for (size_t i = 0; i < nstat; i++) e.touched += gmean[i] != SENT_MEAN || grstd[i] != SENT_RSTD;
    }
    if (params) {
        /* Padding rows of every step add dy (x - mean) rstd and dy with the sentinels. */
        double pad = (double)T * (Bp - B);
        double *wg = malloc(h * sizeof *wg), *wb = malloc(h * sizeof *wb);
        for (uint32_t c = 0; c < h; c++) {
            wg[c] = dg0[c] + s.dgain[c] + pad * SENT_DHS * (SENT_HP - SENT_MEAN) * SENT_RSTD;
            wb[c] = db0[c] + s.dbias[c] + pad * SENT_DHS;
        }
        e.dgain = rel(gdg, wg, h);
        e.dbias = rel(gdb, wb, h);
        free(wg), free(wb);
    }

    free(u0), free(hs0), free(hp0), free(mean0), free(rstd0), free(dhs0), free(dhp0), free(du0), free(dg0), free(db0);
    free(gu), free(ghs), free(ghp), free(gmean), free(grstd), free(gdhs), free(gdhp), free(gdu), free(gdg), free(gdb);
    enn_buffer *bufs[] = {bu, bhs, bhp, bmean, brstd, bdhs, bdhp, bdu, bdg, bdb};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) enn_buffer_destroy(ctx, bufs[i]);
    for (int k = 0; k < 5; k++) enn_buffer_destroy(ctx, bw[k]), free(wf[k]);
    free_solution(&s);
    free_problem(&p);
    return e;
}

/* Tolerance, relative to each tensor's largest value. Each product is an fp32 sum of at
 * most 3h terms (rounding ~6e-8 per term, growing like sqrt(length) in practice: <= 3e-6 for
 * 3h = 1536), carried through T <= 4 steps whose Jacobians (weights of norm ~1 times the
 * layer norm's rstd of a few) amplify it by a few per step; the parameter reduction adds
 * column sums of T * Bp <= 100 terms. 2e-4 covers that with margin; the measured errors
 * stay near 1e-6. */
#define TOL 2e-4

static void check_case(enn_context *ctx, enn_recorder *rec, uint32_t T, uint32_t B, uint32_t h, int ln,
                       uint32_t rows, int gap, uint64_t seed)
{
    enn_recurrence_shape shape = {.T = T, .B = B, .Bp = padded_batch(B, h), .h = h, .layer_norm = ln,
                                  .eps = (float)EPS, .rows_per_group = rows};
    uint32_t used = enn_recurrence_rows_per_group(enn_recorder_context(rec), &shape);
    errors e = run_case(ctx, rec, T, B, h, ln, rows, gap, seed);
    cr_log_info("T=%u B=%u h=%u ln=%d rows=%u gap=%d: u %.2g hs %.2g hp %.2g stats %.2g dhs %.2g dhp %.2g du %.2g "
                "dgain %.2g dbias %.2g touched %zu",
                T, B, h, ln, used, gap, e.u, e.hs, e.hp, e.stats, e.dhs, e.dhp, e.du, e.dgain, e.dbias, e.touched);
    cr_assert_neq(used, 0u, "T=%u B=%u h=%u: no rows per group: %s", T, B, h, enn_last_error());
    if (rows) cr_assert_eq(used, rows, "forced %u rows per group, the launcher reports %u", rows, used);
    const double got[9] = {e.u, e.hs, e.hp, e.stats, e.dhs, e.dhp, e.du, e.dgain, e.dbias};
    static const char *const names[9] = {"u", "hs", "hp", "mean/rstd", "dhs", "dhp", "du", "dgain", "dbias"};
    for (int i = 0; i < 9; i++)
        cr_assert_lt(got[i], TOL, "T=%u B=%u h=%u ln=%d rows=%u gap=%d: %s error %g", T, B, h, ln, used, gap, names[i],
                     got[i]);
    cr_assert_eq(e.touched, 0, "T=%u B=%u h=%u ln=%d rows=%u gap=%d: %zu padding floats changed", T, B, h, ln, used, gap,
                 e.touched);
}

Test(recurrence, device_small_shapes)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    for (uint32_t rows = 0; rows <= 1; rows++) {
        check_case(ctx, rec, 3, 5, 8, 1, rows, 0, 41);   /* vec4, more rows per group than B */
        check_case(ctx, rec, 2, 9, 13, 0, rows, 0, 42);  /* odd h: scalar kernel, no layer norm */
        check_case(ctx, rec, 2, 4, 6, 1, rows, 1, 43);   /* scalar kernel with layer norm, gapped slabs */
        check_case(ctx, rec, 4, 17, 32, 1, rows, 0, 44); /* partial last group */
        check_case(ctx, rec, 4, 17, 32, 0, rows, 1, 45);
    }
    check_case(ctx, rec, 4, 17, 32, 1, 3, 0, 46); /* rows per group not a power of two */
    /* more rows than the CPU kernels' register block (8): one column group per invocation */
    check_case(ctx, rec, 4, 17, 32, 1, 12, 0, 49);
    check_case(ctx, rec, 1, 1, 1, 1, 0, 0, 47);   /* h = 1: a constant row, rstd = 1/sqrt(eps) */
    check_case(ctx, rec, 1, 1, 1, 0, 0, 0, 48);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* h = 512: 3h = 1536 floats a row; the launcher shrinks the rows per group to fit the
 * device's shared memory (32 KiB on lavapipe). */
Test(recurrence, device_wide_hidden)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    check_case(ctx, rec, 2, 5, 128, 1, 0, 0, 51);
    check_case(ctx, rec, 1, 3, 512, 1, 0, 0, 52);
    check_case(ctx, rec, 1, 2, 512, 0, 1, 0, 53);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(recurrence, rejects_bad_arguments)
{
    enn_context *ctx = test_context();
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *buf = tu_buffer(ctx, NULL, 4096);
    enn_view v = enn_view_of(buf);
    enn_recurrence_seq q = {v, 256};
    enn_recurrence_shape ok = {.T = 2, .B = 3, .Bp = 4, .h = 4, .layer_norm = 0, .eps = 1e-6f};
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    enn_recurrence_shape bad = ok;
    bad.B = 5;
    cr_assert_eq(enn_recurrence_forward(rec, &bad, q, q, q, v, v, v, v, v, v, v), ENN_ERROR_SHAPE);
    bad = ok;
    bad.T = 0;
    cr_assert_eq(enn_recurrence_backward(rec, &bad, q, q, q, q, q, q, v, v, v, v, v), ENN_ERROR_SHAPE);
    enn_recurrence_seq odd = {v, 200};
    cr_assert_eq(enn_recurrence_forward(rec, &ok, odd, q, q, v, v, v, v, v, v, v), ENN_ERROR_INVALID_ARGUMENT);
    enn_recurrence_seq big = {v, 16384}; /* two slabs of u pass the 16 KiB buffer */
    cr_assert_eq(enn_recurrence_forward(rec, &ok, big, q, q, v, v, v, v, v, v, v), ENN_ERROR_OUT_OF_RANGE);
    bad = ok;
    bad.rows_per_group = 1000;
    cr_assert_eq(enn_recurrence_forward(rec, &bad, q, q, q, v, v, v, v, v, v, v), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(enn_recorder_get_stats(rec).dispatches, 0u);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, buf);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
