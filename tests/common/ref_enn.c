/* Double-precision reference of the whole ENN model; see ref_enn.h and ENN-SPEC.md. */
#include "ref_enn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REF_ENN_LN_EPS 1e-6
#define REF_ENN_L2_CLAMP 1e-12
/* The trace clip bound as the float32 model holds it (TensorFlow's clip_by_value on
 * float32, and libenn): 0.1f is a little above the double 0.1, so a trace already
 * clipped to 0.1f and fed back (stateful, eta = 0) passes the clip and its gradient. */
#define REF_ENN_CLIP ((double)0.1f)

/* ---------------------------------------------------------------- configuration */

ref_enn_config ref_enn_config_default(int B, int T, int d, int h, int N)
{
    ref_enn_config c = {0};
    c.B = B, c.T = T, c.d = d, c.h = h, c.N = N;
    c.eta = 0.05, c.alpha = 0.5, c.tau = 1.5, c.lambda = 0.1;
    c.layer_norm = 1;
    c.trace_mode = REF_ENN_TRACE_SHARED;
    c.trace_grad = REF_ENN_TRACE_GRAD_EXACT;
    c.head = REF_ENN_HEAD_CLASSIFIER;
    c.pooling = REF_ENN_POOL_ATTENTION;
    c.num_classes = 10;
    c.dropout_rate = 0.3;
    c.out_dim = 1;
    c.per_step = 0;
    c.vocab = 2;
    c.lm_input = REF_ENN_LM_EMBEDDING;
    return c;
}

const char *ref_enn_config_check(const ref_enn_config *c)
{
    if (c->B < 1 || c->T < 1 || c->d < 1 || c->h < 1 || c->N < 1) return "B, T, d, h and N must be at least 1";
    if (c->tau <= 0.0 || 1.0 + 10.0 * c->lambda <= 0.0) return "tau and 1 + 10 lambda must be positive";
    if (c->head == REF_ENN_HEAD_CLASSIFIER && c->num_classes < 1) return "classifier needs num_classes >= 1";
    if (c->head == REF_ENN_HEAD_CLASSIFIER && (c->dropout_rate < 0.0 || c->dropout_rate >= 1.0))
        return "dropout rate must lie in [0, 1)";
    if (c->head == REF_ENN_HEAD_REGRESSOR && c->out_dim < 1) return "regressor needs out_dim >= 1";
    if (c->head == REF_ENN_HEAD_LM && c->vocab < 2) return "language model needs vocab >= 2";
    if (c->head == REF_ENN_HEAD_LM && c->lm_input == REF_ENN_LM_FLOAT && c->d != 1)
        return "language model with the float token feature needs d = 1";
    return NULL;
}

int ref_enn_trace_copies(const ref_enn_config *c) { return c->trace_mode == REF_ENN_TRACE_PER_SAMPLE ? c->B : 1; }

double ref_enn_tau_effective(const ref_enn_config *c) { return c->tau / (1.0 + 10.0 * c->lambda); }

static size_t head_width(const ref_enn_config *c)
{
    switch (c->head) {
    case REF_ENN_HEAD_CLASSIFIER: return (size_t)c->num_classes;
    case REF_ENN_HEAD_REGRESSOR: return (size_t)c->out_dim;
    default: return (size_t)c->vocab;
    }
}

/* ---------------------------------------------------------------- parameter layout */

int ref_enn_layout(const ref_enn_config *c, ref_enn_tensor out[REF_ENN_MAX_TENSORS])
{
    size_t d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N, K = head_width(c);
    ref_enn_tensor t[REF_ENN_MAX_TENSORS];
    int n = 0;
#define ADD(nm, r, cl) (t[n].name = (nm), t[n].rows = (r), t[n].cols = (cl), n++)
    if (c->head == REF_ENN_HEAD_LM && c->lm_input == REF_ENN_LM_EMBEDDING) ADD("embedding.table", (size_t)c->vocab, d);
    ADD("W_z", d, h);
    ADD("b_z", h, 1);
    ADD("M", N, h);
    ADD("W_u", 3 * h, 3 * h);
    ADD("b_u", 3 * h, 1);
    ADD("W_o", 3 * h, h);
    ADD("b_o", h, 1);
    if (c->layer_norm) {
        ADD("ln1.gain", h, 1);
        ADD("ln1.bias", h, 1);
        ADD("ln2.gain", h, 1);
        ADD("ln2.bias", h, 1);
    }
    if (c->head == REF_ENN_HEAD_CLASSIFIER && c->pooling == REF_ENN_POOL_ATTENTION) {
        ADD("pool.w", h, 1);
        ADD("pool.b", 1, 1);
    }
    ADD("out.W", h, K);
    ADD("out.b", K, 1);
#undef ADD
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        t[i].offset = off;
        t[i].count = t[i].rows * t[i].cols;
        off += t[i].count;
    }
    if (out) memcpy(out, t, sizeof(ref_enn_tensor) * (size_t)n);
    return n;
}

size_t ref_enn_num_params(const ref_enn_config *c)
{
    ref_enn_tensor t[REF_ENN_MAX_TENSORS];
    int n = ref_enn_layout(c, t);
    return t[n - 1].offset + t[n - 1].count;
}

const ref_enn_tensor *ref_enn_find(const ref_enn_config *c, const char *name, ref_enn_tensor *storage)
{
    ref_enn_tensor t[REF_ENN_MAX_TENSORS];
    int n = ref_enn_layout(c, t);
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) {
            *storage = t[i];
            return storage;
        }
    return NULL;
}

double *ref_enn_param(const ref_enn_config *c, double *params, const char *name)
{
    ref_enn_tensor t;
    return ref_enn_find(c, name, &t) ? params + t.offset : NULL;
}

/* Keras's count_params() = trainable + non-trainable. The package's ENN layer holds the
 * initial trace as a non-trainable [N,h] weight, so for ENN(128, N=64) on MNIST rows
 * (d=28) + Dense(10), last-state pooling, layer norm on:
 *   W_z 28*128 + b_z 128 = 3,712;  M 64*128 = 8,192;  W_u 384*384 + b_u 384 = 147,840;
 *   W_o 384*128 + b_o 128 = 49,280;  two layer norms 4*128 = 512;  Dense 128*10+10 = 1,290
 *   trainable 210,826;  + initial trace 8,192 = 219,018 (the paper's number).
 * Language model, float feature (d=1), V=188,590:
 *   256 + 8,192 + 147,840 + 49,280 + 512 + 129*188,590 = 24,534,190 trainable,
 *   + 8,192 = 24,542,382 (the paper's number). */
ref_enn_count ref_enn_count_params(const ref_enn_config *c)
{
    ref_enn_count r;
    r.trainable = ref_enn_num_params(c);
    r.initial_trace = (size_t)c->N * (size_t)c->h;
    r.keras_total = r.trainable + r.initial_trace;
    return r;
}

/* ---------------------------------------------------------------- random numbers */

uint64_t ref_enn_rand_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double ref_enn_rand_uniform(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(ref_enn_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0));
}

double ref_enn_rand_normal(uint64_t *s)
{
    /* Box-Muller; 1 - U keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - ref_enn_rand_uniform(s, 0.0, 1.0), u2 = ref_enn_rand_uniform(s, 0.0, 1.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void ref_enn_fill_normal(double *x, size_t n, double std, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) x[i] = std * ref_enn_rand_normal(s);
}

static void fill_he_normal(double *w, size_t n, size_t fan_in, uint64_t *s)
{
    /* Keras VarianceScaling(2, fan_in, truncated_normal): 0.8796... is the std of a unit
     * normal truncated at +-2, so the kept values end with std sqrt(2/fan_in). */
    double sd = sqrt(2.0 / (double)fan_in) / 0.87962566103423978;
    for (size_t i = 0; i < n; i++) {
        double v;
        do v = ref_enn_rand_normal(s);
        while (fabs(v) > 2.0);
        w[i] = sd * v;
    }
}

static void fill_uniform(double *w, size_t n, double limit, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) w[i] = ref_enn_rand_uniform(s, -limit, limit);
}

void ref_enn_init_params(const ref_enn_config *c, double *p, uint64_t seed)
{
    ref_enn_tensor t[REF_ENN_MAX_TENSORS];
    int n = ref_enn_layout(c, t);
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        double *w = p + t[i].offset;
        const char *nm = t[i].name;
        if (!strcmp(nm, "W_z") || !strcmp(nm, "W_u") || !strcmp(nm, "W_o"))
            fill_he_normal(w, t[i].count, t[i].rows, &s);
        else if (!strcmp(nm, "M") || !strcmp(nm, "pool.w") || !strcmp(nm, "out.W"))
            fill_uniform(w, t[i].count, sqrt(6.0 / (double)(t[i].rows + t[i].cols)), &s);
        else if (!strcmp(nm, "embedding.table"))
            fill_uniform(w, t[i].count, 0.05, &s);
        else if (!strcmp(nm, "ln1.gain") || !strcmp(nm, "ln2.gain"))
            for (size_t k = 0; k < t[i].count; k++) w[k] = 1.0;
        else
            memset(w, 0, t[i].count * sizeof(double));
    }
}

/* ---------------------------------------------------------------- tape */

ref_enn_tape *ref_enn_tape_new(const ref_enn_config *c)
{
    if (ref_enn_config_check(c)) return NULL;
    ref_enn_tape *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->cfg = *c;
    tp->nH = ref_enn_trace_copies(c);
    size_t B = (size_t)c->B, T = (size_t)c->T, d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N;
    size_t nH = (size_t)tp->nH, K = head_width(c);
    size_t nlogits = c->head == REF_ENN_HEAD_CLASSIFIER ? B * K
                   : c->head == REF_ENN_HEAD_REGRESSOR ? (c->per_step ? B * T * K : B * K)
                   : B * T * K;
    struct { double **p; size_t n; } arrays[] = {
        {&tp->x, T * B * d},        {&tp->zpre, T * B * h},     {&tp->zr, T * B * h},
        {&tp->ln1_mean, T * B},     {&tp->ln1_rstd, T * B},     {&tp->z, T * B * h},
        {&tp->z_ss, T * B},         {&tp->zn, T * B * h},       {&tp->E, T * nH * N * h},
        {&tp->E_ss, T * nH * N},    {&tp->En, T * nH * N * h},  {&tp->a, T * B * N},
        {&tp->m, T * B * h},        {&tp->upre, T * B * 3 * h}, {&tp->u, T * B * 3 * h},
        {&tp->opre, T * B * h},     {&tp->hr, T * B * h},       {&tp->ln2_mean, T * B},
        {&tp->ln2_rstd, T * B},     {&tp->hs, (T + 1) * B * h}, {&tp->Hpre, T * nH * N * h},
        {&tp->H, (T + 1) * nH * N * h}, {&tp->pool_s, T * B},   {&tp->pool_p, T * B},
        {&tp->feat, B * h},         {&tp->feat_drop, B * h},    {&tp->logits, nlogits},
        {&tp->probs, nlogits},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        *arrays[i].p = calloc(arrays[i].n, sizeof(double));
        if (!*arrays[i].p) {
            ref_enn_tape_free(tp);
            return NULL;
        }
    }
    return tp;
}

void ref_enn_tape_free(ref_enn_tape *tp)
{
    if (!tp) return;
    double *all[] = {tp->x, tp->zpre, tp->zr, tp->ln1_mean, tp->ln1_rstd, tp->z, tp->z_ss, tp->zn,
                     tp->E, tp->E_ss, tp->En, tp->a, tp->m, tp->upre, tp->u, tp->opre, tp->hr,
                     tp->ln2_mean, tp->ln2_rstd, tp->hs, tp->Hpre, tp->H, tp->pool_s, tp->pool_p,
                     tp->feat, tp->feat_drop, tp->logits, tp->probs};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    free(tp);
}

const double *ref_enn_final_trace(const ref_enn_tape *tp)
{
    const ref_enn_config *c = &tp->cfg;
    return tp->H + (size_t)c->T * (size_t)tp->nH * (size_t)c->N * (size_t)c->h;
}

/* ---------------------------------------------------------------- small building blocks */

static double relu(double v) { return v > 0.0 ? v : 0.0; }

/* out[n] = b[n] + sum_k in[k] W[k,n];  in [K], W [K,Nout] */
static void dense_forward(double *out, const double *in, const double *W, const double *b, size_t K, size_t Nout)
{
    for (size_t n = 0; n < Nout; n++) out[n] = b ? b[n] : 0.0;
    for (size_t k = 0; k < K; k++) {
        double v = in[k];
        const double *w = W + k * Nout;
        for (size_t n = 0; n < Nout; n++) out[n] += v * w[n];
    }
}

/* gW[k,n] += in[k] gout[n]; gb[n] += gout[n]; gin[k] (+)= sum_n gout[n] W[k,n] */
static void dense_backward(double *gin, double *gW, double *gb, const double *gout, const double *in,
                           const double *W, size_t K, size_t Nout, int accumulate_gin)
{
    for (size_t k = 0; k < K; k++) {
        const double *w = W + k * Nout;
        double *gw = gW + k * Nout, acc = 0.0;
        for (size_t n = 0; n < Nout; n++) {
            gw[n] += in[k] * gout[n];
            acc += gout[n] * w[n];
        }
        if (gin) gin[k] = accumulate_gin ? gin[k] + acc : acc;
    }
    if (gb)
        for (size_t n = 0; n < Nout; n++) gb[n] += gout[n];
}

/* Layer norm over n values: biased variance, eps 1e-6. */
static void layernorm_forward(double *y, double *mean_out, double *rstd_out, const double *x, const double *gain,
                              const double *bias, size_t n)
{
    double mean = 0.0, var = 0.0;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)n;
    double rstd = 1.0 / sqrt(var + REF_ENN_LN_EPS);
    for (size_t i = 0; i < n; i++) y[i] = gain[i] * (x[i] - mean) * rstd + bias[i];
    *mean_out = mean, *rstd_out = rstd;
}

/* gx = rstd (g - mean(g) - xhat mean(g xhat)) with g = gy * gain; gx overwritten. */
static void layernorm_backward(double *gx, double *ggain, double *gbias, const double *gy, const double *x, double mean,
                               double rstd, const double *gain, size_t n)
{
    double mg = 0.0, mgx = 0.0;
    for (size_t i = 0; i < n; i++) {
        double xhat = (x[i] - mean) * rstd, g = gy[i] * gain[i];
        ggain[i] += gy[i] * xhat;
        gbias[i] += gy[i];
        mg += g, mgx += g * xhat;
    }
    mg /= (double)n, mgx /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double xhat = (x[i] - mean) * rstd;
        gx[i] = rstd * (gy[i] * gain[i] - mg - xhat * mgx);
    }
}

/* y = x / sqrt(max(sum x^2, 1e-12)); returns the unclamped sum of squares. */
static double l2norm_forward(double *y, const double *x, size_t n)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss > REF_ENN_L2_CLAMP ? ss : REF_ENN_L2_CLAMP);
    for (size_t i = 0; i < n; i++) y[i] = x[i] * r;
    return ss;
}

/* gx += d y / d x applied to gy. tf.maximum sends the gradient to the sum of squares
 * when it is >= the clamp (ties included); below it the norm is a constant. */
static void l2norm_backward(double *gx, const double *gy, const double *y, double ss, size_t n)
{
    if (ss >= REF_ENN_L2_CLAMP) {
        double r = 1.0 / sqrt(ss), dot = 0.0;
        for (size_t i = 0; i < n; i++) dot += y[i] * gy[i];
        for (size_t i = 0; i < n; i++) gx[i] += r * (gy[i] - y[i] * dot);
    } else {
        double r = 1.0 / sqrt(REF_ENN_L2_CLAMP);
        for (size_t i = 0; i < n; i++) gx[i] += r * gy[i];
    }
}

/* In-place softmax of n values; returns log(sum exp(v - max)) + max (the log partition). */
static double softmax_inplace(double *v, size_t n)
{
    double mx = v[0], sum = 0.0;
    for (size_t i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    for (size_t i = 0; i < n; i++) sum += exp(v[i] - mx);
    for (size_t i = 0; i < n; i++) v[i] = exp(v[i] - mx) / sum;
    return mx + log(sum);
}

/* ---------------------------------------------------------------- parameter pointers */

typedef struct {
    const double *emb, *W_z, *b_z, *M, *W_u, *b_u, *W_o, *b_o, *g1, *be1, *g2, *be2, *pw, *pb, *hW, *hb;
} ref_params;

static ref_params bind_params(const ref_enn_config *c, const double *p)
{
    ref_params r;
    double *q = (double *)p; /* ref_enn_param takes a mutable pointer; nothing is written here */
    r.emb = ref_enn_param(c, q, "embedding.table");
    r.W_z = ref_enn_param(c, q, "W_z");
    r.b_z = ref_enn_param(c, q, "b_z");
    r.M = ref_enn_param(c, q, "M");
    r.W_u = ref_enn_param(c, q, "W_u");
    r.b_u = ref_enn_param(c, q, "b_u");
    r.W_o = ref_enn_param(c, q, "W_o");
    r.b_o = ref_enn_param(c, q, "b_o");
    r.g1 = ref_enn_param(c, q, "ln1.gain");
    r.be1 = ref_enn_param(c, q, "ln1.bias");
    r.g2 = ref_enn_param(c, q, "ln2.gain");
    r.be2 = ref_enn_param(c, q, "ln2.bias");
    r.pw = ref_enn_param(c, q, "pool.w");
    r.pb = ref_enn_param(c, q, "pool.b");
    r.hW = ref_enn_param(c, q, "out.W");
    r.hb = ref_enn_param(c, q, "out.b");
    return r;
}

typedef struct {
    double *emb, *W_z, *b_z, *M, *W_u, *b_u, *W_o, *b_o, *g1, *be1, *g2, *be2, *pw, *pb, *hW, *hb;
} ref_grad_params;

static ref_grad_params bind_grads(const ref_enn_config *c, double *g)
{
    ref_grad_params r;
    r.emb = ref_enn_param(c, g, "embedding.table");
    r.W_z = ref_enn_param(c, g, "W_z");
    r.b_z = ref_enn_param(c, g, "b_z");
    r.M = ref_enn_param(c, g, "M");
    r.W_u = ref_enn_param(c, g, "W_u");
    r.b_u = ref_enn_param(c, g, "b_u");
    r.W_o = ref_enn_param(c, g, "W_o");
    r.b_o = ref_enn_param(c, g, "b_o");
    r.g1 = ref_enn_param(c, g, "ln1.gain");
    r.be1 = ref_enn_param(c, g, "ln1.bias");
    r.g2 = ref_enn_param(c, g, "ln2.gain");
    r.be2 = ref_enn_param(c, g, "ln2.bias");
    r.pw = ref_enn_param(c, g, "pool.w");
    r.pb = ref_enn_param(c, g, "pool.b");
    r.hW = ref_enn_param(c, g, "out.W");
    r.hb = ref_enn_param(c, g, "out.b");
    return r;
}

/* ---------------------------------------------------------------- forward */

/* Features for every step, time-major: tape x [T,B,d]. */
static void gather_inputs(const ref_enn_config *c, const ref_params *P, const ref_enn_inputs *in, double *x)
{
    size_t B = (size_t)c->B, T = (size_t)c->T, d = (size_t)c->d;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++) {
            double *dst = x + (t * B + b) * d;
            if (c->head == REF_ENN_HEAD_LM && c->lm_input == REF_ENN_LM_EMBEDDING) {
                memcpy(dst, P->emb + (size_t)in->tokens[b * T + t] * d, d * sizeof(double));
            } else if (c->head == REF_ENN_HEAD_LM && !in->x) {
                dst[0] = (double)in->tokens[b * T + t]; /* the paper's float feature, d = 1 */
            } else {
                memcpy(dst, in->x + (b * T + t) * d, d * sizeof(double));
            }
        }
}

/* One cell step t (0-based): reads hs[t], H[t]; writes hs[t+1], H[t+1]. */
static void cell_step_forward(const ref_enn_config *c, const ref_params *P, const ref_enn_inputs *in,
                              ref_enn_tape *tp, size_t t)
{
    size_t B = (size_t)c->B, d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N, nH = (size_t)tp->nH;
    size_t NH = N * h;
    double tau_e = ref_enn_tau_effective(c);
    const double *Hin = in->frozen_trace ? in->frozen_trace + t * nH * NH : tp->H + t * nH * NH;
    if (in->frozen_trace) memcpy(tp->H + t * nH * NH, Hin, nH * NH * sizeof(double));

    /* E = M + alpha H and its row-normalised copy, once per trace copy. */
    for (size_t k = 0; k < nH; k++)
        for (size_t n = 0; n < N; n++) {
            double *E = tp->E + (t * nH + k) * NH + n * h;
            for (size_t j = 0; j < h; j++) E[j] = P->M[n * h + j] + c->alpha * Hin[k * NH + n * h + j];
            tp->E_ss[(t * nH + k) * N + n] = l2norm_forward(tp->En + (t * nH + k) * NH + n * h, E, h);
        }

    double *cvec = malloc(3 * h * sizeof(double));
    for (size_t b = 0; b < B; b++) {
        size_t tb = t * B + b, k = nH == 1 ? 0 : b;
        const double *x = tp->x + tb * d;
        double *zpre = tp->zpre + tb * h, *zr = tp->zr + tb * h, *z = tp->z + tb * h;
        /* z = LN1(ReLU(x W_z + b_z)) */
        dense_forward(zpre, x, P->W_z, P->b_z, d, h);
        for (size_t j = 0; j < h; j++) zr[j] = relu(zpre[j]);
        if (c->layer_norm)
            layernorm_forward(z, &tp->ln1_mean[tb], &tp->ln1_rstd[tb], zr, P->g1, P->be1, h);
        else
            memcpy(z, zr, h * sizeof(double));
        tp->z_ss[tb] = l2norm_forward(tp->zn + tb * h, z, h);

        /* a = softmax(zn En^T / tau_e) over the N slots; m = a E */
        const double *E = tp->E + (t * nH + k) * NH, *En = tp->En + (t * nH + k) * NH;
        double *a = tp->a + tb * N, *m = tp->m + tb * h;
        for (size_t n = 0; n < N; n++) {
            double s = 0.0;
            for (size_t j = 0; j < h; j++) s += tp->zn[tb * h + j] * En[n * h + j];
            a[n] = s / tau_e;
        }
        softmax_inplace(a, N);
        for (size_t j = 0; j < h; j++) m[j] = 0.0;
        for (size_t n = 0; n < N; n++)
            for (size_t j = 0; j < h; j++) m[j] += a[n] * E[n * h + j];

        /* u = ReLU([z, m, h_prev] W_u + b_u); h = LN2(ReLU(u W_o + b_o)) */
        memcpy(cvec, z, h * sizeof(double));
        memcpy(cvec + h, m, h * sizeof(double));
        memcpy(cvec + 2 * h, tp->hs + tb * h, h * sizeof(double));
        double *upre = tp->upre + tb * 3 * h, *u = tp->u + tb * 3 * h;
        dense_forward(upre, cvec, P->W_u, P->b_u, 3 * h, 3 * h);
        for (size_t j = 0; j < 3 * h; j++) u[j] = relu(upre[j]);
        double *opre = tp->opre + tb * h, *hr = tp->hr + tb * h, *hn = tp->hs + ((t + 1) * B + b) * h;
        dense_forward(opre, u, P->W_o, P->b_o, 3 * h, h);
        for (size_t j = 0; j < h; j++) hr[j] = relu(opre[j]);
        if (c->layer_norm)
            layernorm_forward(hn, &tp->ln2_mean[tb], &tp->ln2_rstd[tb], hr, P->g2, P->be2, h);
        else
            memcpy(hn, hr, h * sizeof(double));
    }
    free(cvec);

    /* H' = clip((1-eta) H + eta (dH + xi)); dH = outer(a, z), batch-mean for the shared trace. */
    for (size_t k = 0; k < nH; k++) {
        size_t b0 = nH == 1 ? 0 : k, b1 = nH == 1 ? B : k + 1;
        double scale = nH == 1 ? 1.0 / (double)B : 1.0;
        double *Hpre = tp->Hpre + (t * nH + k) * NH, *Hout = tp->H + ((t + 1) * nH + k) * NH;
        const double *xi = in->xi ? in->xi + (t * nH + k) * NH : NULL;
        for (size_t n = 0; n < N; n++)
            for (size_t j = 0; j < h; j++) {
                double dH = 0.0;
                for (size_t b = b0; b < b1; b++) dH += tp->a[(t * B + b) * N + n] * tp->z[(t * B + b) * h + j];
                dH *= scale;
                double v = (1.0 - c->eta) * Hin[k * NH + n * h + j] + c->eta * (dH + (xi ? xi[n * h + j] : 0.0));
                Hpre[n * h + j] = v;
                Hout[n * h + j] = v < -REF_ENN_CLIP ? -REF_ENN_CLIP : v > REF_ENN_CLIP ? REF_ENN_CLIP : v;
            }
    }
}

static double head_forward(const ref_enn_config *c, const ref_params *P, const ref_enn_inputs *in, ref_enn_tape *tp)
{
    size_t B = (size_t)c->B, T = (size_t)c->T, h = (size_t)c->h, K = head_width(c);
    double loss = 0.0;
    if (c->head == REF_ENN_HEAD_CLASSIFIER) {
        for (size_t b = 0; b < B; b++) {
            double *feat = tp->feat + b * h;
            if (c->pooling == REF_ENN_POOL_LAST) {
                memcpy(feat, tp->hs + (T * B + b) * h, h * sizeof(double));
            } else {
                /* s_t = tanh(h_t w + b), p = softmax over t, feat = sum_t p_t h_t */
                double *sc = malloc(T * sizeof(double));
                for (size_t t = 0; t < T; t++) {
                    double s;
                    dense_forward(&s, tp->hs + ((t + 1) * B + b) * h, P->pw, P->pb, h, 1);
                    tp->pool_s[t * B + b] = sc[t] = tanh(s);
                }
                softmax_inplace(sc, T);
                for (size_t j = 0; j < h; j++) feat[j] = 0.0;
                for (size_t t = 0; t < T; t++) {
                    tp->pool_p[t * B + b] = sc[t];
                    for (size_t j = 0; j < h; j++) feat[j] += sc[t] * tp->hs[((t + 1) * B + b) * h + j];
                }
                free(sc);
            }
            double *fd = tp->feat_drop + b * h;
            for (size_t j = 0; j < h; j++)
                fd[j] = in->keep ? (in->keep[b * h + j] ? feat[j] / (1.0 - c->dropout_rate) : 0.0) : feat[j];
            double *lg = tp->logits + b * K, *pr = tp->probs + b * K;
            dense_forward(lg, fd, P->hW, P->hb, h, K);
            memcpy(pr, lg, K * sizeof(double));
            double logz = softmax_inplace(pr, K);
            loss += logz - lg[in->labels[b]];
        }
        return loss / (double)B;
    }
    if (c->head == REF_ENN_HEAD_REGRESSOR) {
        size_t steps = c->per_step ? T : 1;
        for (size_t b = 0; b < B; b++)
            for (size_t s = 0; s < steps; s++) {
                size_t t = c->per_step ? s + 1 : T; /* index into hs */
                double *pred = tp->logits + (b * steps + s) * K;
                const double *y = in->y + (b * steps + s) * K;
                dense_forward(pred, tp->hs + (t * B + b) * h, P->hW, P->hb, h, K);
                for (size_t o = 0; o < K; o++) loss += (pred[o] - y[o]) * (pred[o] - y[o]);
            }
        return loss / (double)(B * steps * K);
    }
    /* language model: per-token softmax cross-entropy, padding target 0 ignored */
    tp->lm_count = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            double *lg = tp->logits + (b * T + t) * K, *pr = tp->probs + (b * T + t) * K;
            dense_forward(lg, tp->hs + ((t + 1) * B + b) * h, P->hW, P->hb, h, K);
            memcpy(pr, lg, K * sizeof(double));
            double logz = softmax_inplace(pr, K);
            int tg = in->targets[b * T + t];
            if (tg != 0) {
                loss += logz - lg[tg];
                tp->lm_count++;
            }
        }
    return tp->lm_count ? loss / (double)tp->lm_count : 0.0;
}

double ref_enn_forward(const ref_enn_config *c, const double *params, const ref_enn_inputs *in, ref_enn_tape *tp)
{
    size_t B = (size_t)c->B, T = (size_t)c->T, h = (size_t)c->h, N = (size_t)c->N, nH = (size_t)tp->nH;
    ref_params P = bind_params(c, params);
    gather_inputs(c, &P, in, tp->x);
    memcpy(tp->hs, in->h0, B * h * sizeof(double));
    memcpy(tp->H, in->H0, nH * N * h * sizeof(double));
    for (size_t t = 0; t < T; t++) cell_step_forward(c, &P, in, tp, t);
    tp->loss = head_forward(c, &P, in, tp);
    return tp->loss;
}

/* ---------------------------------------------------------------- backward */

/* Head and loss backward: fills gh [T+1,B,h] (gradient on every hidden state) and the
 * head's parameter gradients. */
static void head_backward(const ref_enn_config *c, const ref_params *P, const ref_grad_params *G,
                          const ref_enn_inputs *in, const ref_enn_tape *tp, double *gh)
{
    size_t B = (size_t)c->B, T = (size_t)c->T, h = (size_t)c->h, K = head_width(c);
    double *gout = malloc(K * sizeof(double)), *gfeat = malloc(h * sizeof(double));
    if (c->head == REF_ENN_HEAD_CLASSIFIER) {
        for (size_t b = 0; b < B; b++) {
            /* d(mean CE)/d logits = (softmax - onehot) / B */
            for (size_t k = 0; k < K; k++)
                gout[k] = (tp->probs[b * K + k] - ((int)k == in->labels[b] ? 1.0 : 0.0)) / (double)B;
            dense_backward(gfeat, G->hW, G->hb, gout, tp->feat_drop + b * h, P->hW, h, K, 0);
            if (in->keep)
                for (size_t j = 0; j < h; j++) gfeat[j] = in->keep[b * h + j] ? gfeat[j] / (1.0 - c->dropout_rate) : 0.0;
            if (c->pooling == REF_ENN_POOL_LAST) {
                for (size_t j = 0; j < h; j++) gh[(T * B + b) * h + j] += gfeat[j];
                continue;
            }
            /* feat = sum_t p_t h_t: gh_t += p_t gfeat; gp_t = gfeat . h_t */
            double *gp = malloc(T * sizeof(double)), dot = 0.0;
            for (size_t t = 0; t < T; t++) {
                const double *ht = tp->hs + ((t + 1) * B + b) * h;
                double p = tp->pool_p[t * B + b];
                gp[t] = 0.0;
                for (size_t j = 0; j < h; j++) {
                    gh[((t + 1) * B + b) * h + j] += p * gfeat[j];
                    gp[t] += gfeat[j] * ht[j];
                }
                dot += p * gp[t];
            }
            for (size_t t = 0; t < T; t++) {
                double p = tp->pool_p[t * B + b], s = tp->pool_s[t * B + b];
                double gpre = p * (gp[t] - dot) * (1.0 - s * s); /* softmax, then tanh */
                dense_backward(gh + ((t + 1) * B + b) * h, G->pw, G->pb, &gpre, tp->hs + ((t + 1) * B + b) * h,
                               P->pw, h, 1, 1);
            }
            free(gp);
        }
    } else if (c->head == REF_ENN_HEAD_REGRESSOR) {
        size_t steps = c->per_step ? T : 1;
        double scale = 2.0 / (double)(B * steps * K);
        for (size_t b = 0; b < B; b++)
            for (size_t s = 0; s < steps; s++) {
                size_t t = c->per_step ? s + 1 : T;
                for (size_t o = 0; o < K; o++)
                    gout[o] = scale * (tp->logits[(b * steps + s) * K + o] - in->y[(b * steps + s) * K + o]);
                dense_backward(gh + (t * B + b) * h, G->hW, G->hb, gout, tp->hs + (t * B + b) * h, P->hW, h, K, 1);
            }
    } else if (tp->lm_count > 0) {
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t < T; t++) {
                int tg = in->targets[b * T + t];
                if (tg == 0) continue;
                for (size_t k = 0; k < K; k++)
                    gout[k] = (tp->probs[(b * T + t) * K + k] - ((int)k == tg ? 1.0 : 0.0)) / (double)tp->lm_count;
                dense_backward(gh + ((t + 1) * B + b) * h, G->hW, G->hb, gout, tp->hs + ((t + 1) * B + b) * h, P->hW,
                               h, K, 1);
            }
    }
    free(gout);
    free(gfeat);
}

void ref_enn_backward(const ref_enn_config *c, const double *params, const ref_enn_inputs *in,
                      const ref_enn_tape *tp, ref_enn_grads *out)
{
    size_t B = (size_t)c->B, T = (size_t)c->T, d = (size_t)c->d, h = (size_t)c->h, N = (size_t)c->N;
    size_t nH = (size_t)tp->nH, NH = N * h, np = ref_enn_num_params(c);
    int exact = c->trace_grad == REF_ENN_TRACE_GRAD_EXACT;
    double tau_e = ref_enn_tau_effective(c);
    ref_params P = bind_params(c, params);
    double *gparams = calloc(np, sizeof(double));
    ref_grad_params G = bind_grads(c, gparams);

    double *gh = calloc((T + 1) * B * h, sizeof(double)); /* dL/d hs, head part, then carried */
    double *gH = calloc(nH * NH, sizeof(double));         /* dL/d H[t+1], carried backwards */
    double *gHprev = calloc(nH * NH, sizeof(double));
    double *gE = calloc(nH * NH, sizeof(double));
    double *gEn = calloc(nH * NH, sizeof(double));
    double *gz = calloc(B * h, sizeof(double)), *ga = calloc(B * N, sizeof(double));
    double *gx = calloc(T * B * d, sizeof(double));
    double *tmp = malloc(3 * h * sizeof(double)), *gc = malloc(3 * h * sizeof(double));
    double *gu = malloc(3 * h * sizeof(double)), *cvec = malloc(3 * h * sizeof(double));
    double *gzn = malloc(h * sizeof(double)), *gzr = malloc(h * sizeof(double));

    head_backward(c, &P, &G, in, tp, gh);

    for (size_t t = T; t-- > 0;) {
        memset(gHprev, 0, nH * NH * sizeof(double));
        memset(gE, 0, nH * NH * sizeof(double));
        memset(gEn, 0, nH * NH * sizeof(double));
        memset(gz, 0, B * h * sizeof(double));
        memset(ga, 0, B * N * sizeof(double));

        /* Trace update H[t+1] = clip((1-eta) H[t] + eta (dH + xi)). The clip passes
         * gradient where -0.1 <= Hpre <= 0.1. Stop mode: H is a constant, nothing flows. */
        if (exact) {
            for (size_t k = 0; k < nH; k++) {
                size_t b0 = nH == 1 ? 0 : k, b1 = nH == 1 ? B : k + 1;
                double scale = nH == 1 ? 1.0 / (double)B : 1.0;
                const double *Hpre = tp->Hpre + (t * nH + k) * NH;
                for (size_t i = 0; i < NH; i++) {
                    double g = (Hpre[i] >= -REF_ENN_CLIP && Hpre[i] <= REF_ENN_CLIP) ? gH[k * NH + i] : 0.0;
                    gHprev[k * NH + i] += (1.0 - c->eta) * g;
                    gH[k * NH + i] = c->eta * scale * g; /* now d/d(outer(a,z)) summed over the copy's samples */
                }
                for (size_t b = b0; b < b1; b++) {
                    const double *a = tp->a + (t * B + b) * N, *z = tp->z + (t * B + b) * h;
                    for (size_t n = 0; n < N; n++)
                        for (size_t j = 0; j < h; j++) {
                            double g = gH[k * NH + n * h + j];
                            ga[b * N + n] += g * z[j];
                            gz[b * h + j] += g * a[n];
                        }
                }
            }
        }

        for (size_t b = 0; b < B; b++) {
            size_t tb = t * B + b, k = nH == 1 ? 0 : b;
            double *ghn = gh + ((t + 1) * B + b) * h; /* dL/d h_{t+1}: head + later steps */
            /* h = LN2(ReLU(opre)) */
            if (c->layer_norm)
                layernorm_backward(tmp, G.g2, G.be2, ghn, tp->hr + tb * h, tp->ln2_mean[tb], tp->ln2_rstd[tb], P.g2, h);
            else
                memcpy(tmp, ghn, h * sizeof(double));
            for (size_t j = 0; j < h; j++) tmp[j] = tp->opre[tb * h + j] > 0.0 ? tmp[j] : 0.0;
            dense_backward(gu, G.W_o, G.b_o, tmp, tp->u + tb * 3 * h, P.W_o, 3 * h, h, 0);
            for (size_t j = 0; j < 3 * h; j++) gu[j] = tp->upre[tb * 3 * h + j] > 0.0 ? gu[j] : 0.0;
            memcpy(cvec, tp->z + tb * h, h * sizeof(double));
            memcpy(cvec + h, tp->m + tb * h, h * sizeof(double));
            memcpy(cvec + 2 * h, tp->hs + tb * h, h * sizeof(double));
            dense_backward(gc, G.W_u, G.b_u, gu, cvec, P.W_u, 3 * h, 3 * h, 0);
            for (size_t j = 0; j < h; j++) {
                gz[b * h + j] += gc[j];
                gh[tb * h + j] += gc[2 * h + j]; /* into h_prev = hs[t] */
            }
            /* m = a E */
            const double *gm = gc + h, *E = tp->E + (t * nH + k) * NH, *En = tp->En + (t * nH + k) * NH;
            const double *a = tp->a + tb * N, *zn = tp->zn + tb * h;
            for (size_t n = 0; n < N; n++)
                for (size_t j = 0; j < h; j++) {
                    ga[b * N + n] += gm[j] * E[n * h + j];
                    gE[k * NH + n * h + j] += a[n] * gm[j];
                }
            /* a = softmax(s), s = zn . En / tau_e */
            double dot = 0.0;
            for (size_t n = 0; n < N; n++) dot += a[n] * ga[b * N + n];
            for (size_t j = 0; j < h; j++) gzn[j] = 0.0;
            for (size_t n = 0; n < N; n++) {
                double gs = a[n] * (ga[b * N + n] - dot) / tau_e;
                for (size_t j = 0; j < h; j++) {
                    gzn[j] += gs * En[n * h + j];
                    gEn[k * NH + n * h + j] += gs * zn[j];
                }
            }
            l2norm_backward(gz + b * h, gzn, zn, tp->z_ss[tb], h);
            /* z = LN1(ReLU(x W_z + b_z)) */
            if (c->layer_norm)
                layernorm_backward(gzr, G.g1, G.be1, gz + b * h, tp->zr + tb * h, tp->ln1_mean[tb], tp->ln1_rstd[tb],
                                   P.g1, h);
            else
                memcpy(gzr, gz + b * h, h * sizeof(double));
            for (size_t j = 0; j < h; j++) gzr[j] = tp->zpre[tb * h + j] > 0.0 ? gzr[j] : 0.0;
            dense_backward(gx + tb * d, G.W_z, G.b_z, gzr, tp->x + tb * d, P.W_z, d, h, 0);
        }

        /* En = E / |E| row-wise; E = M + alpha H[t] */
        for (size_t k = 0; k < nH; k++)
            for (size_t n = 0; n < N; n++) {
                size_t row = (t * nH + k) * NH + n * h;
                l2norm_backward(gE + k * NH + n * h, gEn + k * NH + n * h, tp->En + row, tp->E_ss[(t * nH + k) * N + n], h);
            }
        for (size_t k = 0; k < nH; k++)
            for (size_t i = 0; i < NH; i++) {
                G.M[i] += gE[k * NH + i];
                if (exact) gHprev[k * NH + i] += c->alpha * gE[k * NH + i];
            }
        memcpy(gH, gHprev, nH * NH * sizeof(double));
    }

    /* Scatter: x gradients back to batch-major, and into the embedding rows. */
    if (out->x)
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++) memcpy(out->x + (b * T + t) * d, gx + (t * B + b) * d, d * sizeof(double));
    if (G.emb)
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++) {
                double *row = G.emb + (size_t)in->tokens[b * T + t] * d;
                for (size_t j = 0; j < d; j++) row[j] += gx[(t * B + b) * d + j];
            }
    if (out->params) memcpy(out->params, gparams, np * sizeof(double));
    if (out->h0) memcpy(out->h0, gh, B * h * sizeof(double));
    if (out->H0) memcpy(out->H0, gH, nH * NH * sizeof(double)); /* zero in stop mode */

    free(gparams), free(gh), free(gH), free(gHprev), free(gE), free(gEn), free(gz), free(ga), free(gx);
    free(tmp), free(gc), free(gu), free(cvec), free(gzn), free(gzr);
}

/* ---------------------------------------------------------------- testing aids */

static uint64_t mix(uint64_t hsh, uint64_t v)
{
    hsh ^= v + 0x9e3779b97f4a7c15ull + (hsh << 6) + (hsh >> 2);
    return hsh;
}

uint64_t ref_enn_kink_signature(const ref_enn_tape *tp)
{
    const ref_enn_config *c = &tp->cfg;
    size_t B = (size_t)c->B, T = (size_t)c->T, h = (size_t)c->h, N = (size_t)c->N, nH = (size_t)tp->nH;
    uint64_t s = 1469598103934665603ull;
    for (size_t i = 0; i < T * B * h; i++) s = mix(s, (tp->zpre[i] > 0.0) | (tp->opre[i] > 0.0) << 1);
    for (size_t i = 0; i < T * B * 3 * h; i++) s = mix(s, tp->upre[i] > 0.0);
    for (size_t i = 0; i < T * nH * N * h; i++) s = mix(s, (tp->Hpre[i] < -REF_ENN_CLIP) | (tp->Hpre[i] > REF_ENN_CLIP) << 1);
    for (size_t i = 0; i < T * B; i++) s = mix(s, tp->z_ss[i] >= REF_ENN_L2_CLAMP);
    for (size_t i = 0; i < T * nH * N; i++) s = mix(s, tp->E_ss[i] >= REF_ENN_L2_CLAMP);
    return s;
}

size_t ref_enn_clipped_count(const ref_enn_tape *tp)
{
    const ref_enn_config *c = &tp->cfg;
    size_t n = (size_t)c->T * (size_t)tp->nH * (size_t)c->N * (size_t)c->h, cnt = 0;
    for (size_t i = 0; i < n; i++) cnt += tp->Hpre[i] < -REF_ENN_CLIP || tp->Hpre[i] > REF_ENN_CLIP;
    return cnt;
}
