/* The whole-model double-precision reference (tests/common/ref_enn.c) checked against
 * things independent of it: central finite differences of its own loss for every
 * gradient, in every option combination; a second, direct transcription of the spec's
 * step for the forward pass; the per-sample trace's independence across the batch; the
 * parameter counts the paper reports. Pure CPU; the whole suite takes seconds. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/config.h"
#include "ref_enn.h"

typedef enum { CLS_ATTENTION, CLS_LAST, REG_LAST, REG_SEQUENCE, LM_EMBEDDING, LM_FLOAT, HEAD_KINDS } head_kind;
static const char *head_names[] = {"classifier/attention", "classifier/last", "regressor/last",
                                   "regressor/sequence", "lm/embedding", "lm/float"};

typedef struct fd_case {
    head_kind head;
    int layer_norm, per_sample, stop;
    int clipping; /* 1: large eta, noise and H0 so that the clip cuts part of the trace */
    int large;    /* 1: a larger shape than the default B=3 T=5 d=4 h=6 N=7 */
    uint64_t seed;
} fd_case;

/* Everything one forward pass needs, owned here. */
typedef struct problem {
    ref_enn_config cfg;
    double *params, *x, *y, *h0, *H0, *xi;
    int *tokens, *labels, *targets;
    unsigned char *keep;
    ref_enn_inputs in;
} problem;

static void problem_free(problem *p)
{
    free(p->params), free(p->x), free(p->y), free(p->h0), free(p->H0), free(p->xi);
    free(p->tokens), free(p->labels), free(p->targets), free(p->keep);
}

static problem make_problem(const fd_case *k)
{
    problem p;
    memset(&p, 0, sizeof p);
    int B = k->large ? 5 : 3, T = k->large ? 8 : 5, d = k->large ? 6 : 4, h = k->large ? 10 : 6, N = k->large ? 9 : 7;
    if (k->head == LM_FLOAT) d = 1;
    ref_enn_config c = ref_enn_config_default(B, T, d, h, N);
    c.layer_norm = k->layer_norm;
    c.trace_mode = k->per_sample ? REF_ENN_TRACE_PER_SAMPLE : REF_ENN_TRACE_SHARED;
    c.trace_grad = k->stop ? REF_ENN_TRACE_GRAD_STOP : REF_ENN_TRACE_GRAD_EXACT;
    /* A larger eta than the default makes the trace matter more for the gradient. */
    c.eta = k->clipping ? 0.6 : 0.2;
    c.alpha = 0.8;
    c.num_classes = 5;
    c.out_dim = 3;
    c.vocab = k->large ? 11 : 7;
    switch (k->head) {
    case CLS_ATTENTION: c.head = REF_ENN_HEAD_CLASSIFIER, c.pooling = REF_ENN_POOL_ATTENTION; break;
    case CLS_LAST: c.head = REF_ENN_HEAD_CLASSIFIER, c.pooling = REF_ENN_POOL_LAST; break;
    case REG_LAST: c.head = REF_ENN_HEAD_REGRESSOR, c.per_step = 0; break;
    case REG_SEQUENCE: c.head = REF_ENN_HEAD_REGRESSOR, c.per_step = 1; break;
    case LM_EMBEDDING: c.head = REF_ENN_HEAD_LM, c.lm_input = REF_ENN_LM_EMBEDDING; break;
    default: c.head = REF_ENN_HEAD_LM, c.lm_input = REF_ENN_LM_FLOAT; break;
    }
    cr_assert_null(ref_enn_config_check(&c));
    p.cfg = c;

    uint64_t s = k->seed;
    size_t np = ref_enn_num_params(&c), nH = (size_t)ref_enn_trace_copies(&c), NH = (size_t)N * h;
    p.params = malloc(np * sizeof(double));
    ref_enn_init_params(&c, p.params, s);
    /* Move every parameter off its initial value (zero biases, unit gains) so that no
     * gradient is checked at a special point. */
    for (size_t i = 0; i < np; i++) p.params[i] += ref_enn_rand_uniform(&s, -0.2, 0.2);

    size_t BT = (size_t)B * T;
    p.x = malloc(BT * d * sizeof(double));
    p.tokens = malloc(BT * sizeof(int));
    p.targets = malloc(BT * sizeof(int));
    for (size_t i = 0; i < BT; i++) {
        p.tokens[i] = (int)(ref_enn_rand_u64(&s) % (uint64_t)c.vocab);
        /* about one target in four is the padding id 0 */
        p.targets[i] = ref_enn_rand_uniform(&s, 0, 1) < 0.25 ? 0 : 1 + (int)(ref_enn_rand_u64(&s) % (uint64_t)(c.vocab - 1));
    }
    if (k->head == LM_FLOAT)
        for (size_t i = 0; i < BT; i++) p.x[i] = (double)p.tokens[i]; /* explicit, so it can be perturbed */
    else
        ref_enn_fill_normal(p.x, BT * d, 1.0, &s);
    p.labels = malloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) p.labels[b] = (int)(ref_enn_rand_u64(&s) % (uint64_t)c.num_classes);
    size_t ny = (size_t)B * (c.per_step ? T : 1) * c.out_dim;
    p.y = malloc(ny * sizeof(double));
    ref_enn_fill_normal(p.y, ny, 1.0, &s);
    p.h0 = malloc((size_t)B * h * sizeof(double));
    ref_enn_fill_normal(p.h0, (size_t)B * h, 0.3, &s);
    p.H0 = malloc(nH * NH * sizeof(double));
    ref_enn_fill_normal(p.H0, nH * NH, k->clipping ? 0.08 : 0.03, &s);
    p.xi = malloc((size_t)T * nH * NH * sizeof(double));
    ref_enn_fill_normal(p.xi, (size_t)T * nH * NH, k->clipping ? 0.2 : 0.02, &s);
    if (k->head == CLS_ATTENTION) { /* dropout on one classifier, off on the other */
        p.keep = malloc((size_t)B * h);
        for (int i = 0; i < B * h; i++) p.keep[i] = ref_enn_rand_uniform(&s, 0, 1) >= c.dropout_rate;
    }

    p.in.x = k->head == LM_EMBEDDING ? NULL : p.x;
    p.in.tokens = p.tokens;
    p.in.labels = p.labels;
    p.in.y = p.y;
    p.in.targets = p.targets;
    p.in.h0 = p.h0;
    p.in.H0 = p.H0;
    p.in.xi = p.xi;
    p.in.keep = p.keep;
    return p;
}

/* ---------------------------------------------------------------- finite differences */

/* Central difference of the loss in *v. The step is eps = 1e-5 (relative to |v| above 1):
 * truncation error ~eps^2 f'''/6 ~ 1e-11, round-off ~1e-16 |loss| / eps ~ 1e-11. If either
 * side's kink signature (ReLU signs, clip sides) differs from the base point, the step
 * straddled a kink and the difference is meaningless: shrink it, up to 1e-9. Returns 0
 * and sets *ok = 0 if no step avoids the kink. */
static double central_difference(problem *p, ref_enn_tape *tp, double *v, uint64_t sig0, int *ok)
{
    double orig = *v;
    for (double eps = 1e-4 * fmax(1.0, fabs(orig)); eps > 1e-9 * fmax(1.0, fabs(orig)); eps *= 0.1) {
        double l[4];
        const double steps[4] = {eps, -eps, 0.5 * eps, -0.5 * eps};
        int same = 1;
        for (int i = 0; i < 4; i++) {
            *v = orig + steps[i];
            l[i] = ref_enn_forward(&p->cfg, p->params, &p->in, tp);
            same &= ref_enn_kink_signature(tp) == sig0;
        }
        *v = orig;
        if (same) {
            *ok = 1;
            double d1 = (l[0] - l[1]) / (2.0 * eps), d2 = (l[2] - l[3]) / eps;
            return (4.0 * d2 - d1) / 3.0;
        }
    }
    *ok = 0;
    return 0.0;
}

typedef struct {
    double worst;       /* worst |fd - an| / (1e-6 max(|fd|,|an|) + 1e-9): must stay <= 1 */
    size_t checked, kinked;
} fd_stats;

/* Pass: |fd - an| <= 1e-6 max(|fd|, |an|) + 1e-9. The relative term is the brief's 1e-6
 * (observed errors are ~1e-9 relative); the absolute term covers gradients that are zero
 * (dead ReLUs, clipped trace entries) where fd is round-off, ~1e-11. */
static void check_array(problem *p, ref_enn_tape *tp, uint64_t sig0, const char *what, double *vals,
                        const double *analytic, size_t n, size_t stride, fd_stats *st)
{
    double worst = 0.0;
    size_t worst_i = 0;
    double worst_fd = 0, worst_an = 0;
    for (size_t i = 0; i < n; i += stride) {
        int ok;
        double fd = central_difference(p, tp, &vals[i], sig0, &ok);
        if (!ok) {
            st->kinked++;
            continue;
        }
        double an = analytic[i];
        double r = fabs(fd - an) / (1e-6 * fmax(fabs(fd), fabs(an)) + 1e-9);
        if (r > worst) worst = r, worst_i = i, worst_fd = fd, worst_an = an;
        st->checked++;
    }
    cr_expect_leq(worst, 1.0, "%s[%zu]: finite difference %.12g, analytic %.12g", what, worst_i, worst_fd, worst_an);
    if (worst > st->worst) st->worst = worst;
}

static void check_all_gradients(const fd_case *k, size_t stride)
{
    problem p = make_problem(k);
    ref_enn_config *c = &p.cfg;
    size_t np = ref_enn_num_params(c), nH = (size_t)ref_enn_trace_copies(c);
    size_t B = (size_t)c->B, T = (size_t)c->T, d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N;
    ref_enn_tape *tp = ref_enn_tape_new(c);
    cr_assert_not_null(tp);

    double loss = ref_enn_forward(c, p.params, &p.in, tp);
    cr_assert(isfinite(loss));
    size_t clipped = ref_enn_clipped_count(tp), total = T * nH * N * h;
    if (k->clipping) /* the clip must cut some entries and pass others */
        cr_assert(clipped > 0 && clipped < total, "clipped %zu of %zu", clipped, total);

    /* Stop mode's gradient is the exact gradient of the loss with every step's H held
     * at its value: freeze the trace the forward pass produced. */
    double *frozen = NULL;
    if (k->stop) {
        frozen = malloc(T * nH * N * h * sizeof(double));
        memcpy(frozen, tp->H, T * nH * N * h * sizeof(double));
        p.in.frozen_trace = frozen;
        double again = ref_enn_forward(c, p.params, &p.in, tp);
        cr_assert_eq(again, loss, "freezing the trace at its own values changed the loss");
    }
    uint64_t sig0 = ref_enn_kink_signature(tp);

    double *gp = malloc(np * sizeof(double)), *gx = malloc(B * T * d * sizeof(double));
    double *gh0 = malloc(B * h * sizeof(double)), *gH0 = malloc(nH * N * h * sizeof(double));
    ref_enn_grads g = {gp, gx, gh0, gH0};
    ref_enn_backward(c, p.params, &p.in, tp, &g);

    fd_stats st = {0};
    ref_enn_tensor t[REF_ENN_MAX_TENSORS];
    int nt = ref_enn_layout(c, t);
    for (int i = 0; i < nt; i++)
        check_array(&p, tp, sig0, t[i].name, p.params + t[i].offset, gp + t[i].offset, t[i].count, stride, &st);
    if (k->head != LM_EMBEDDING) check_array(&p, tp, sig0, "x", p.x, gx, B * T * d, stride, &st);
    check_array(&p, tp, sig0, "h0", p.h0, gh0, B * h, 1, &st);
    if (k->stop) {
        for (size_t i = 0; i < nH * N * h; i++) cr_assert_eq(gH0[i], 0.0, "stop mode must give no gradient to H0");
    } else {
        check_array(&p, tp, sig0, "H0", p.H0, gH0, nH * N * h, 1, &st);
    }
    cr_expect_eq(st.kinked, 0, "%zu entries sit on a kink", st.kinked);
    cr_log_info("%s ln=%d %s %s%s%s: %zu gradients, worst %.3g of tolerance, %zu/%zu trace entries clipped",
                head_names[k->head], k->layer_norm, k->per_sample ? "per-sample" : "shared", k->stop ? "stop" : "exact",
                k->clipping ? " clipping" : "", k->large ? " large" : "", st.checked, st.worst, clipped, total);

    free(gp), free(gx), free(gh0), free(gH0), free(frozen);
    ref_enn_tape_free(tp);
    problem_free(&p);
}

/* Every option combination: 6 heads x layer norm x trace mode x trace gradient x
 * (mild | clipping trace): 96 small cases, each checking every gradient entry. */
ParameterizedTestParameters(ref_enn, finite_differences_small)
{
    static fd_case cases[HEAD_KINDS * 16];
    int n = 0;
    for (int hk = 0; hk < HEAD_KINDS; hk++)
        for (int m = 0; m < 16; m++)
            cases[n] = (fd_case){(head_kind)hk, m & 1, (m >> 1) & 1, (m >> 2) & 1, (m >> 3) & 1, 0, 1000u + (uint64_t)n},
            n++;
    return cr_make_param_array(fd_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(fd_case *k, ref_enn, finite_differences_small) { check_all_gradients(k, 1); }

/* A larger shape (B=5 T=8 d=6 h=10 N=9) per head, options mixed; every entry again. */
ParameterizedTestParameters(ref_enn, finite_differences_large)
{
    static fd_case cases[] = {
        {CLS_ATTENTION, 1, 0, 0, 1, 1, 7},
        {CLS_LAST, 1, 1, 0, 0, 1, 8},
        {REG_LAST, 0, 0, 1, 1, 1, 9},
        {REG_SEQUENCE, 1, 1, 1, 1, 1, 10},
        {LM_EMBEDDING, 1, 0, 0, 1, 1, 11},
        {LM_FLOAT, 0, 1, 0, 0, 1, 12},
    };
    return cr_make_param_array(fd_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(fd_case *k, ref_enn, finite_differences_large) { check_all_gradients(k, 1); }

/* ---------------------------------------------------------------- forward vs the spec */

/* The spec's formulas transcribed a second time, one sample at a time and as literally as
 * possible (W[k][n] row-major [in,out]), to check the reference's forward pass. */
static double at(const double *W, size_t cols, size_t r, size_t col) { return W[r * cols + col]; }

static void spec_layer_norm(double *v, size_t n, const double *gain, const double *bias)
{
    double mu = 0, var = 0;
    for (size_t i = 0; i < n; i++) mu += v[i] / (double)n;
    for (size_t i = 0; i < n; i++) var += (v[i] - mu) * (v[i] - mu) / (double)n;
    for (size_t i = 0; i < n; i++) v[i] = gain[i] * (v[i] - mu) / sqrt(var + 1e-6) + bias[i];
}

/* One sample's step: z, a, h_new from x, h_prev and the trace H [N,h] it reads. */
static void spec_step(const ref_enn_config *c, double *P, const double *x, const double *hprev, const double *H,
                      double *z, double *a, double *hnew)
{
    size_t d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N;
    const double *W_z = ref_enn_param(c, P, "W_z"), *b_z = ref_enn_param(c, P, "b_z"), *M = ref_enn_param(c, P, "M");
    const double *W_u = ref_enn_param(c, P, "W_u"), *b_u = ref_enn_param(c, P, "b_u");
    const double *W_o = ref_enn_param(c, P, "W_o"), *b_o = ref_enn_param(c, P, "b_o");
    double E[64 * 64], zcat[3 * 64], u[3 * 64], zn[64], En[64 * 64], m[64];
    cr_assert(N <= 64 && h <= 64 && N * h <= 64 * 64);
    for (size_t j = 0; j < h; j++) {
        double s = b_z[j];
        for (size_t i = 0; i < d; i++) s += x[i] * at(W_z, h, i, j);
        z[j] = s > 0 ? s : 0;
    }
    if (c->layer_norm) spec_layer_norm(z, h, ref_enn_param(c, P, "ln1.gain"), ref_enn_param(c, P, "ln1.bias"));
    double zz = 0;
    for (size_t j = 0; j < h; j++) zz += z[j] * z[j];
    for (size_t j = 0; j < h; j++) zn[j] = z[j] / sqrt(fmax(zz, 1e-12));
    for (size_t n = 0; n < N; n++) {
        double ee = 0;
        for (size_t j = 0; j < h; j++) {
            E[n * h + j] = M[n * h + j] + c->alpha * H[n * h + j];
            ee += E[n * h + j] * E[n * h + j];
        }
        for (size_t j = 0; j < h; j++) En[n * h + j] = E[n * h + j] / sqrt(fmax(ee, 1e-12));
    }
    double tau_e = c->tau / (1 + 10 * c->lambda), total = 0;
    for (size_t n = 0; n < N; n++) {
        double s = 0;
        for (size_t j = 0; j < h; j++) s += zn[j] * En[n * h + j];
        a[n] = exp(s / tau_e); /* |s| <= 1/tau_e: no overflow */
        total += a[n];
    }
    for (size_t n = 0; n < N; n++) a[n] /= total;
    for (size_t j = 0; j < h; j++) {
        m[j] = 0;
        for (size_t n = 0; n < N; n++) m[j] += a[n] * E[n * h + j];
    }
    for (size_t j = 0; j < h; j++) zcat[j] = z[j], zcat[h + j] = m[j], zcat[2 * h + j] = hprev[j];
    for (size_t o = 0; o < 3 * h; o++) {
        double s = b_u[o];
        for (size_t i = 0; i < 3 * h; i++) s += zcat[i] * at(W_u, 3 * h, i, o);
        u[o] = s > 0 ? s : 0;
    }
    for (size_t o = 0; o < h; o++) {
        double s = b_o[o];
        for (size_t i = 0; i < 3 * h; i++) s += u[i] * at(W_o, h, i, o);
        hnew[o] = s > 0 ? s : 0;
    }
    if (c->layer_norm) spec_layer_norm(hnew, h, ref_enn_param(c, P, "ln2.gain"), ref_enn_param(c, P, "ln2.bias"));
}

/* The loss from the hidden states, transcribed from the spec's heads. */
static double spec_loss(const problem *p, const ref_enn_tape *tp)
{
    const ref_enn_config *c = &p->cfg;
    size_t B = (size_t)c->B, T = (size_t)c->T, h = (size_t)c->h;
    double *P = p->params, loss = 0;
    const double *W = ref_enn_param(c, P, "out.W"), *bias = ref_enn_param(c, P, "out.b");
#define HS(t, b, j) tp->hs[((size_t)(t) * B + (b)) * h + (j)] /* t = 1..T */
    if (c->head == REF_ENN_HEAD_CLASSIFIER) {
        size_t C = (size_t)c->num_classes;
        for (size_t b = 0; b < B; b++) {
            double feat[64] = {0}, logit[64], zsum = 0;
            if (c->pooling == REF_ENN_POOL_LAST) {
                for (size_t j = 0; j < h; j++) feat[j] = HS(T, b, j);
            } else {
                const double *w = ref_enn_param(c, P, "pool.w"), *pb = ref_enn_param(c, P, "pool.b");
                double e[64], esum = 0;
                for (size_t t = 1; t <= T; t++) {
                    double s = pb[0];
                    for (size_t j = 0; j < h; j++) s += HS(t, b, j) * w[j];
                    e[t] = exp(tanh(s));
                    esum += e[t];
                }
                for (size_t t = 1; t <= T; t++)
                    for (size_t j = 0; j < h; j++) feat[j] += e[t] / esum * HS(t, b, j);
            }
            if (p->keep)
                for (size_t j = 0; j < h; j++) feat[j] = p->keep[b * h + j] ? feat[j] / (1 - c->dropout_rate) : 0;
            for (size_t k = 0; k < C; k++) {
                logit[k] = bias[k];
                for (size_t j = 0; j < h; j++) logit[k] += feat[j] * at(W, C, j, k);
                zsum += exp(logit[k]);
            }
            loss += -log(exp(logit[p->labels[b]]) / zsum) / (double)B;
        }
    } else if (c->head == REF_ENN_HEAD_REGRESSOR) {
        size_t O = (size_t)c->out_dim, steps = c->per_step ? T : 1;
        for (size_t b = 0; b < B; b++)
            for (size_t s = 0; s < steps; s++)
                for (size_t o = 0; o < O; o++) {
                    size_t t = c->per_step ? s + 1 : T;
                    double pred = bias[o];
                    for (size_t j = 0; j < h; j++) pred += HS(t, b, j) * at(W, O, j, o);
                    double e = pred - p->y[(b * steps + s) * O + o];
                    loss += e * e / (double)(B * steps * O);
                }
    } else {
        size_t V = (size_t)c->vocab, count = 0;
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t < T; t++) {
                int tg = p->targets[b * T + t];
                if (!tg) continue;
                double logit[64], zsum = 0;
                for (size_t v = 0; v < V; v++) {
                    logit[v] = bias[v];
                    for (size_t j = 0; j < h; j++) logit[v] += HS(t + 1, b, j) * at(W, V, j, v);
                    zsum += exp(logit[v]);
                }
                loss += -log(exp(logit[tg]) / zsum);
                count++;
            }
        loss /= (double)count;
    }
#undef HS
    return loss;
}

static void expect_close(double got, double want, const char *what, size_t t, size_t i)
{
    /* Same formulas in a different order: agreement to ~1e-13 relative; 1e-10 leaves room
     * for the sums of up to 3h terms and the softmaxes, and still catches any mistake. */
    cr_expect_leq(fabs(got - want), 1e-10 * fmax(1.0, fabs(want)), "%s step %zu [%zu]: reference %.15g, spec %.15g",
                  what, t, i, got, want);
}

Test(ref_enn, forward_matches_spec)
{
    for (int hk = 0; hk < HEAD_KINDS; hk++)
        for (int m = 0; m < 4; m++) {
            fd_case k = {(head_kind)hk, m & 1, (m >> 1) & 1, 0, 1, 0, 77u + (uint64_t)(hk * 4 + m)};
            problem p = make_problem(&k);
            ref_enn_config *c = &p.cfg;
            size_t B = (size_t)c->B, T = (size_t)c->T, d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N;
            size_t nH = (size_t)ref_enn_trace_copies(c), NH = N * h;
            ref_enn_tape *tp = ref_enn_tape_new(c);
            double loss = ref_enn_forward(c, p.params, &p.in, tp);
            cr_assert(ref_enn_clipped_count(tp) > 0);
            double *z = malloc(B * h * sizeof(double)), *a = malloc(B * N * sizeof(double)), hn[64], x[64];
            for (size_t t = 0; t < T; t++) {
                for (size_t b = 0; b < B; b++) {
                    /* the input the spec sees at step t */
                    if (c->head == REF_ENN_HEAD_LM && c->lm_input == REF_ENN_LM_EMBEDDING)
                        memcpy(x, ref_enn_param(c, p.params, "embedding.table") + (size_t)p.tokens[b * T + t] * d, d * sizeof(double));
                    else
                        memcpy(x, p.x + (b * T + t) * d, d * sizeof(double));
                    size_t kk = nH == 1 ? 0 : b;
                    spec_step(c, p.params, x, tp->hs + (t * B + b) * h, tp->H + (t * nH + kk) * NH, z + b * h, a + b * N, hn);
                    for (size_t j = 0; j < h; j++) expect_close(tp->hs[((t + 1) * B + b) * h + j], hn[j], "h", t, j);
                    for (size_t n = 0; n < N; n++) expect_close(tp->a[(t * B + b) * N + n], a[b * N + n], "a", t, n);
                }
                /* H' = clip((1 - eta) H + eta (mean_b outer(a_b, z_b) + xi)), or per sample */
                for (size_t kk = 0; kk < nH; kk++)
                    for (size_t i = 0; i < NH; i++) {
                        size_t n = i / h, j = i % h;
                        double dH = 0;
                        for (size_t b = 0; b < B; b++)
                            if (nH == 1 || b == kk) dH += a[b * N + n] * z[b * h + j] / (nH == 1 ? (double)B : 1.0);
                        double v = (1 - c->eta) * tp->H[(t * nH + kk) * NH + i] + c->eta * (dH + p.xi[(t * nH + kk) * NH + i]);
                        v = fmin((double)0.1f, fmax(-(double)0.1f, v));   /* the float32 model's bound */
                        expect_close(tp->H[((t + 1) * nH + kk) * NH + i], v, "H", t, i);
                    }
            }
            expect_close(loss, spec_loss(&p, tp), "loss", T, 0);
            const double *HT = ref_enn_final_trace(tp);
            cr_expect_eq(HT, tp->H + T * nH * NH);
            free(z), free(a);
            ref_enn_tape_free(tp);
            problem_free(&p);
        }
}

/* ---------------------------------------------------------------- options do what they say */

/* Per-sample trace: changing everything of sample j (its input, h0, trace, noise) leaves
 * every other sample's outputs bitwise unchanged. The shared trace must couple them
 * (from step 2 on, the trace carries sample j's outer(a, z)), which shows the check can fail. */
Test(ref_enn, per_sample_trace_isolates_samples)
{
    for (int hk = 0; hk < HEAD_KINDS; hk++)
        for (int per_sample = 0; per_sample < 2; per_sample++) {
            fd_case k = {(head_kind)hk, 1, per_sample, 0, 1, 0, 500u + (uint64_t)hk};
            problem p = make_problem(&k);
            ref_enn_config *c = &p.cfg;
            size_t B = (size_t)c->B, T = (size_t)c->T, d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N;
            size_t nH = (size_t)ref_enn_trace_copies(c), NH = N * h, j = 1;
            ref_enn_tape *t0 = ref_enn_tape_new(c), *t1 = ref_enn_tape_new(c);
            ref_enn_forward(c, p.params, &p.in, t0);
            for (size_t t = 0; t < T; t++) {
                p.tokens[j * T + t] = (p.tokens[j * T + t] + 1) % c->vocab;
                for (size_t i = 0; i < d; i++) p.x[(j * T + t) * d + i] += 0.5;
            }
            for (size_t i = 0; i < h; i++) p.h0[j * h + i] += 0.1;
            if (per_sample) /* sample j's own trace and noise */
                for (size_t i = 0; i < NH; i++) {
                    p.H0[j * NH + i] += 0.01;
                    for (size_t t = 0; t < T; t++) p.xi[(t * nH + j) * NH + i] += 0.01;
                }
            ref_enn_forward(c, p.params, &p.in, t1);
            size_t K = c->head == REF_ENN_HEAD_CLASSIFIER ? (size_t)c->num_classes
                     : c->head == REF_ENN_HEAD_REGRESSOR ? (size_t)c->out_dim : (size_t)c->vocab;
            size_t rows = c->head == REF_ENN_HEAD_CLASSIFIER || (c->head == REF_ENN_HEAD_REGRESSOR && !c->per_step) ? 1 : T;
            int others_same = 1, j_changed = 0;
            for (size_t b = 0; b < B; b++) {
                int same = 1;
                for (size_t t = 0; t <= T; t++) same &= !memcmp(t0->hs + (t * B + b) * h, t1->hs + (t * B + b) * h, h * sizeof(double));
                for (size_t t = 0; t < T; t++) same &= !memcmp(t0->a + (t * B + b) * N, t1->a + (t * B + b) * N, N * sizeof(double));
                same &= !memcmp(t0->logits + b * rows * K, t1->logits + b * rows * K, rows * K * sizeof(double));
                if (per_sample)
                    same &= !memcmp(ref_enn_final_trace(t0) + b * NH, ref_enn_final_trace(t1) + b * NH, NH * sizeof(double));
                if (b == j) j_changed = !same;
                else others_same &= same;
            }
            cr_expect(j_changed, "%s: changing sample %zu did not change it", head_names[hk], j);
            if (per_sample)
                cr_expect(others_same, "%s per-sample: another sample's outputs depend on sample %zu", head_names[hk], j);
            else
                cr_expect(!others_same, "%s shared: the trace should couple the samples", head_names[hk]);
            ref_enn_tape_free(t0), ref_enn_tape_free(t1);
            problem_free(&p);
        }
}

/* The stop-gradient option changes the gradients (only the gradients: the forward pass is
 * identical) and gives H0 none; with eta = 0 and alpha = 0 the trace neither changes nor
 * reaches the output, and both modes must then agree. */
Test(ref_enn, stop_gradient_differs_from_exact)
{
    for (int per_sample = 0; per_sample < 2; per_sample++) {
        fd_case k = {CLS_ATTENTION, 1, per_sample, 0, 0, 0, 900u + (uint64_t)per_sample};
        problem p = make_problem(&k);
        ref_enn_config exact = p.cfg, stop = p.cfg;
        stop.trace_grad = REF_ENN_TRACE_GRAD_STOP;
        size_t np = ref_enn_num_params(&exact), nH0 = (size_t)ref_enn_trace_copies(&exact) * exact.N * exact.h;
        double *ge = calloc(np, sizeof(double)), *gs = calloc(np, sizeof(double));
        double *He = calloc(nH0, sizeof(double)), *Hs = calloc(nH0, sizeof(double));
        for (int degenerate = 0; degenerate < 2; degenerate++) {
            if (degenerate) exact.eta = stop.eta = 0.0, exact.alpha = stop.alpha = 0.0;
            ref_enn_tape *te = ref_enn_tape_new(&exact), *ts = ref_enn_tape_new(&stop);
            double le = ref_enn_forward(&exact, p.params, &p.in, te), ls = ref_enn_forward(&stop, p.params, &p.in, ts);
            cr_expect_eq(le, ls, "the trace-gradient option must not change the forward pass");
            ref_enn_grads g1 = {ge, NULL, NULL, He}, g2 = {gs, NULL, NULL, Hs};
            ref_enn_backward(&exact, p.params, &p.in, te, &g1);
            ref_enn_backward(&stop, p.params, &p.in, ts, &g2);
            double diff = 0, norm = 0, hnorm = 0;
            for (size_t i = 0; i < np; i++) diff += (ge[i] - gs[i]) * (ge[i] - gs[i]), norm += ge[i] * ge[i];
            for (size_t i = 0; i < nH0; i++) {
                hnorm += He[i] * He[i];
                cr_expect_eq(Hs[i], 0.0, "stop mode gave H0 a gradient");
            }
            if (!degenerate) {
                /* relative difference of the whole gradient well above round-off */
                cr_expect_gt(sqrt(diff / norm), 1e-3, "stop and exact gradients agree (%g)", sqrt(diff / norm));
                cr_expect_gt(hnorm, 0.0, "exact mode gives H0 no gradient");
            } else {
                cr_expect_leq(sqrt(diff / norm), 1e-14, "with eta = alpha = 0 the modes should agree (%g)", sqrt(diff / norm));
            }
            ref_enn_tape_free(te), ref_enn_tape_free(ts);
        }
        free(ge), free(gs), free(He), free(Hs);
        problem_free(&p);
    }
}

/* ---------------------------------------------------------------- parameter counts */

static size_t count_of(const ref_enn_config *c, const char *name)
{
    ref_enn_tensor t;
    return ref_enn_find(c, name, &t) ? t.count : 0;
}

/* The paper's counts (its table) are the known results; see ref_enn_count_params for the
 * accounting: Keras's count includes the package's unused non-trainable initial trace. */
Test(ref_enn, parameter_counts_match_the_paper)
{
    /* ENN(128, N=64) on MNIST rows (d = 28) + Dropout + Dense(10), last-state pooling */
    ref_enn_config mnist = ref_enn_config_default(128, 28, 28, 128, 64);
    mnist.pooling = REF_ENN_POOL_LAST;
    ref_enn_count cm = ref_enn_count_params(&mnist);
    cr_expect_eq(cm.keras_total, 219018, "MNIST ENN: %zu", cm.keras_total);
    cr_expect_eq(cm.initial_trace, 8192);
    cr_expect_eq(cm.trainable, 210826, "MNIST ENN trainable: %zu", cm.trainable);
    cr_expect_eq(count_of(&mnist, "W_z"), 28 * 128);
    cr_expect_eq(count_of(&mnist, "W_u"), 384 * 384);
    cr_expect_eq(count_of(&mnist, "W_o"), 384 * 128);
    cr_expect_eq(count_of(&mnist, "ln1.gain") + count_of(&mnist, "ln1.bias") + count_of(&mnist, "ln2.gain") +
                     count_of(&mnist, "ln2.bias"), 512);
    cr_expect_eq(count_of(&mnist, "out.W") + count_of(&mnist, "out.b"), 1290);
    cr_expect_eq(count_of(&mnist, "pool.w"), 0);
    /* The library's default attention pooling adds Dense(1): h + 1 = 129. */
    ref_enn_config attn = mnist;
    attn.pooling = REF_ENN_POOL_ATTENTION;
    cr_expect_eq(ref_enn_count_params(&attn).keras_total, 219018 + 129);

    /* ENN(128) + per-token Dense(188,590), the paper's float token feature (d = 1) */
    ref_enn_config lm = ref_enn_config_default(128, 32, 1, 128, 64);
    lm.head = REF_ENN_HEAD_LM, lm.lm_input = REF_ENN_LM_FLOAT, lm.vocab = 188590;
    cr_assert_null(ref_enn_config_check(&lm));
    ref_enn_count cl = ref_enn_count_params(&lm);
    cr_expect_eq(cl.keras_total, 24542382, "LM ENN: %zu", cl.keras_total);
    cr_expect_eq(cl.trainable, 24542382 - 8192);

    /* The layout is packed, in order, and its total is ref_enn_num_params. */
    ref_enn_config cfgs[] = {mnist, attn, lm};
    for (size_t i = 0; i < 3; i++) {
        ref_enn_tensor t[REF_ENN_MAX_TENSORS];
        int n = ref_enn_layout(&cfgs[i], t);
        size_t off = 0;
        for (int k = 0; k < n; k++) {
            cr_expect_eq(t[k].offset, off, "%s", t[k].name);
            cr_expect_eq(t[k].count, t[k].rows * t[k].cols);
            off += t[k].count;
        }
        cr_expect_eq(off, ref_enn_num_params(&cfgs[i]));
    }
}

/* ---------------------------------------------------------------- initialisation */

/* Statistics of the initialisers against their definitions: a normal truncated at +-2 of
 * its std s has std 0.8796 s (so he_normal's drawn values have std sqrt(2/fan_in)); a
 * uniform on [-l, l] has std l/sqrt(3). With 147,456 draws the sample std is within ~0.3%
 * (one std error ~0.2%); 2% cannot be reached by chance and catches a wrong formula. */
Test(ref_enn, initialisation_statistics)
{
    ref_enn_config c = ref_enn_config_default(2, 2, 28, 128, 64);
    size_t np = ref_enn_num_params(&c);
    double *p = malloc(np * sizeof(double));
    ref_enn_init_params(&c, p, 42);
    struct { const char *name; double want_std, bound; } w[] = {
        {"W_u", sqrt(2.0 / 384), 2 * sqrt(2.0 / 384) / 0.87962566103423978},
        {"W_o", sqrt(2.0 / 384), 2 * sqrt(2.0 / 384) / 0.87962566103423978},
        {"M", sqrt(6.0 / 192) / sqrt(3.0), sqrt(6.0 / 192)},
    };
    for (size_t i = 0; i < 3; i++) {
        ref_enn_tensor t;
        cr_assert_not_null(ref_enn_find(&c, w[i].name, &t));
        double s1 = 0, s2 = 0, mx = 0;
        for (size_t k = 0; k < t.count; k++) {
            double v = p[t.offset + k];
            s1 += v, s2 += v * v, mx = fmax(mx, fabs(v));
        }
        double mean = s1 / (double)t.count, sd = sqrt(s2 / (double)t.count - mean * mean);
        cr_expect_leq(fabs(sd / w[i].want_std - 1), 0.02, "%s std %g, want %g", w[i].name, sd, w[i].want_std);
        cr_expect_leq(fabs(mean), 0.02 * w[i].want_std, "%s mean %g", w[i].name, mean);
        cr_expect_leq(mx, w[i].bound, "%s max %g beyond %g", w[i].name, mx, w[i].bound);
        cr_expect_geq(mx, 0.95 * w[i].bound, "%s max %g: the tails are missing", w[i].name, mx);
    }
    const char *zeros[] = {"b_z", "b_u", "b_o", "ln1.bias", "ln2.bias", "out.b"};
    for (size_t i = 0; i < 6; i++) {
        ref_enn_tensor t;
        ref_enn_find(&c, zeros[i], &t);
        for (size_t k = 0; k < t.count; k++) cr_expect_eq(p[t.offset + k], 0.0, "%s", zeros[i]);
    }
    for (size_t k = 0; k < 128; k++)
        cr_expect_eq(ref_enn_param(&c, p, "ln1.gain")[k] * ref_enn_param(&c, p, "ln2.gain")[k], 1.0);
    free(p);
}

/* ---------------------------------------------------------------- the clip's bounds */

/* TensorFlow's clip_by_value passes the gradient where the unclipped value lies in
 * [-0.1, 0.1], bounds included. Build a trace update that lands exactly on the bounds:
 * z = 0 (every pre-activation negative) so dH = 0, eta = 0.5, H0 = xi = +-0.1f gives
 * Hpre = 0.1f exactly (halving and doubling are exact). The gradient must
 * then equal the one-sided difference from inside the interval, which includes the path
 * through the trace (1-eta) dL/dH1; excluding the bounds would drop it. */
Test(ref_enn, clip_passes_gradient_at_its_bounds)
{
    ref_enn_config c = ref_enn_config_default(2, 2, 2, 3, 2);
    c.layer_norm = 0, c.eta = 0.5, c.alpha = 0.8;
    c.head = REF_ENN_HEAD_REGRESSOR, c.out_dim = 2;
    size_t np = ref_enn_num_params(&c), NH = (size_t)c.N * c.h;
    double *params = malloc(np * sizeof(double));
    ref_enn_init_params(&c, params, 3);
    double *W_z = ref_enn_param(&c, params, "W_z"), *b_z = ref_enn_param(&c, params, "b_z");
    for (int i = 0; i < c.d * c.h; i++) W_z[i] = -1.0;
    for (int i = 0; i < c.h; i++) b_z[i] = -1.0;
    uint64_t s = 5;
    double x[2 * 2 * 2], y[2 * 2], h0[2 * 3], H0[6], xi[2 * 6], gH0[6];
    for (int i = 0; i < 8; i++) x[i] = ref_enn_rand_uniform(&s, 0.1, 1.0);
    ref_enn_fill_normal(y, 4, 1.0, &s);
    ref_enn_fill_normal(h0, 6, 0.5, &s);
    const double bound = (double)0.1f;   /* the clip's bound, as the float32 model holds it */
    for (size_t i = 0; i < NH; i++) H0[i] = xi[i] = xi[NH + i] = (i % 2 ? bound : -bound);
    ref_enn_inputs in = {.x = x, .y = y, .h0 = h0, .H0 = H0, .xi = xi};
    ref_enn_tape *tp = ref_enn_tape_new(&c);
    double loss = ref_enn_forward(&c, params, &in, tp);
    for (size_t i = 0; i < NH; i++) cr_assert_eq(tp->Hpre[i], H0[i], "the update should land exactly on the bound");
    ref_enn_grads g = {.H0 = gH0};
    ref_enn_backward(&c, params, &in, tp, &g);
    double through = 0; /* largest share of a gradient that came through the clip */
    for (size_t i = 0; i < NH; i++) {
        /* step into the interval: down from +0.1, up from -0.1 */
        double eps = H0[i] > 0 ? -1e-7 : 1e-7, orig = H0[i];
        H0[i] = orig + eps;
        double fd = (ref_enn_forward(&c, params, &in, tp) - loss) / eps;
        H0[i] = orig;
        /* one-sided difference: error ~eps f'' ~1e-7; 1e-5 relative is far below the share
         * of the gradient that comes through the clip (checked below to exceed 1%) */
        cr_expect_leq(fabs(fd - gH0[i]), 1e-5 * fmax(1e-3, fabs(fd)), "H0[%zu]: one-sided %.10g, analytic %.10g", i, fd,
                      gH0[i]);
        /* The same difference with H1 held at its value (frozen trace) measures the
         * direct path alone, alpha dL/dE0: it must differ, so the trace path counts. */
        double frozen[2 * 6];
        memcpy(frozen, H0, sizeof H0);
        ref_enn_forward(&c, params, &in, tp); /* restore the tape's H1 */
        memcpy(frozen + NH, tp->H + NH, NH * sizeof(double));
        frozen[i] = orig + eps;
        in.frozen_trace = frozen;
        double direct = (ref_enn_forward(&c, params, &in, tp) - loss) / eps;
        in.frozen_trace = NULL;
        through = fmax(through, fabs(gH0[i] - direct) / fabs(gH0[i]));
    }
    cr_expect_gt(through, 0.01, "the path through the clipped trace carries too little to be tested (%g)", through);
    ref_enn_tape_free(tp);
    free(params);
}

/* ---------------------------------------------------------------- same names as the library */

/* The engine is tested tensor by tensor against this reference, so both layouts must
 * name the same tensors in the same order with the same shapes. */
Test(ref_enn, layout_agrees_with_the_library)
{
    for (int hk = 0; hk < HEAD_KINDS; hk++)
        for (int ln = 0; ln < 2; ln++) {
            fd_case k = {(head_kind)hk, ln, 0, 0, 0, 0, 1};
            problem p = make_problem(&k);
            const ref_enn_config *c = &p.cfg;
            enn_model_config mc;
            enn_model_config_init(&mc, c->head == REF_ENN_HEAD_CLASSIFIER ? ENN_HEAD_CLASSIFIER
                                       : c->head == REF_ENN_HEAD_REGRESSOR ? ENN_HEAD_REGRESSOR
                                                                           : ENN_HEAD_LANGUAGE_MODEL);
            mc.kind = ENN_MODEL_ENN;
            mc.input_features = (uint32_t)c->d;
            mc.embedding_dim = (uint32_t)c->d;
            mc.max_seq_len = (uint32_t)c->T;
            mc.max_batch = (uint32_t)c->B;
            mc.cell.hidden = (uint32_t)c->h;
            mc.cell.memory_slots = (uint32_t)c->N;
            mc.cell.layer_norm = c->layer_norm;
            mc.pooling = c->pooling == REF_ENN_POOL_ATTENTION ? ENN_POOL_ATTENTION : ENN_POOL_LAST;
            mc.return_sequences = c->per_step;
            mc.lm_input = c->lm_input == REF_ENN_LM_EMBEDDING ? ENN_LM_EMBEDDING : ENN_LM_FLOAT_FEATURE;
            mc.outputs = (uint32_t)(c->head == REF_ENN_HEAD_CLASSIFIER ? c->num_classes
                                    : c->head == REF_ENN_HEAD_REGRESSOR ? c->out_dim : c->vocab);
            enn_layout l;
            enn_status st = enn_model_layout(&mc, &l);
            cr_assert_eq(st, ENN_OK, "%s: %s", head_names[hk], enn_last_error());
            ref_enn_tensor t[REF_ENN_MAX_TENSORS];
            int n = ref_enn_layout(c, t);
            cr_assert_eq((uint32_t)n, l.count, "%s ln=%d: %d tensors here, %u in the library", head_names[hk], ln, n, l.count);
            for (int i = 0; i < n; i++) {
                const enn_tensor_info *e = &l.tensors[i];
                cr_expect_str_eq(t[i].name, e->name, "%s ln=%d tensor %d", head_names[hk], ln, i);
                cr_expect_eq(t[i].count, e->count, "%s", t[i].name);
                cr_expect_eq(t[i].rows, e->shape[0], "%s", t[i].name);
                if (e->rank == 2) cr_expect_eq(t[i].cols, e->shape[1], "%s", t[i].name);
            }
            cr_expect_eq(ref_enn_num_params(c), l.elements);
            problem_free(&p);
        }
}
