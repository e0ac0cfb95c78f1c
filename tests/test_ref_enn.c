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
