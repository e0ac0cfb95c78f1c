/* The baselines' recurrent stack in double precision: see ref_rnn.h. */
#include "ref_rnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint32_t ref_rnn_gates(enn_model_kind kind) { return kind == ENN_MODEL_RNN ? 1 : kind == ENN_MODEL_GRU ? 3 : 4; }

static uint32_t layer_in(const ref_rnn *r, uint32_t l) { return l ? r->units[l - 1] : r->d; }

void ref_rnn_param_sizes(const ref_rnn *r, uint32_t l, uint64_t *W, uint64_t *U, uint64_t *b)
{
    uint64_t w = (uint64_t)ref_rnn_gates(r->kind) * r->units[l];
    *W = layer_in(r, l) * w;
    *U = r->units[l] * w;
    *b = (r->kind == ENN_MODEL_GRU ? 2 : 1) * w;
}

static double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

/* One layer's forward over T steps, keeping what the backward needs:
 * hs [T+1, B, u] (h_0 = 0), cs [T+1, B, u] (LSTM), act [T, B, G u] (LSTM i,f,g,o; GRU
 * z,r,hh), rec [T, B, 3u] (GRU: h_prev U + b[1]). */
typedef struct layer_state {
    double *hs, *cs, *act, *rec;
} layer_state;

static void layer_forward(const ref_rnn *r, uint32_t l, const double *X, layer_state *s)
{
    const uint32_t T = r->T, B = r->B, in = layer_in(r, l), u = r->units[l], G = ref_rnn_gates(r->kind), w = G * u;
    const double *W = r->W[l], *U = r->U[l], *b = r->b[l];
    s->hs = calloc((size_t)(T + 1) * B * u, sizeof(double));
    s->cs = calloc((size_t)(T + 1) * B * u, sizeof(double));
    s->act = calloc((size_t)T * B * w, sizeof(double));
    s->rec = calloc((size_t)T * B * w, sizeof(double));
    double *xp = malloc(w * sizeof *xp), *hp = malloc(w * sizeof *hp);
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t n = 0; n < B; n++) {
            const double *x = X + ((size_t)t * B + n) * in, *h_prev = s->hs + ((size_t)t * B + n) * u;
            double *h = s->hs + ((size_t)(t + 1) * B + n) * u;
            double *act = s->act + ((size_t)t * B + n) * w, *rec = s->rec + ((size_t)t * B + n) * w;
            for (uint32_t j = 0; j < w; j++) {
                double a = b[j], c = r->kind == ENN_MODEL_GRU ? b[w + j] : 0.0;
                for (uint32_t k = 0; k < in; k++) a += x[k] * W[(size_t)k * w + j];
                for (uint32_t k = 0; k < u; k++) c += h_prev[k] * U[(size_t)k * w + j];
                xp[j] = a;
                hp[j] = c;
            }
            for (uint32_t j = 0; j < u; j++) {
                if (r->kind == ENN_MODEL_RNN) {
                    h[j] = tanh(xp[j] + hp[j]);
                } else if (r->kind == ENN_MODEL_LSTM) {
                    double i = sigmoid(xp[j] + hp[j]), f = sigmoid(xp[u + j] + hp[u + j]);
                    double g = tanh(xp[2 * u + j] + hp[2 * u + j]), o = sigmoid(xp[3 * u + j] + hp[3 * u + j]);
                    double c_prev = s->cs[((size_t)t * B + n) * u + j];
                    double c = f * c_prev + i * g;
                    s->cs[((size_t)(t + 1) * B + n) * u + j] = c;
                    h[j] = o * tanh(c);
                    act[j] = i, act[u + j] = f, act[2 * u + j] = g, act[3 * u + j] = o;
                } else {
                    double z = sigmoid(xp[j] + hp[j]), rr = sigmoid(xp[u + j] + hp[u + j]);
                    double hh = tanh(xp[2 * u + j] + rr * hp[2 * u + j]);
                    h[j] = z * h_prev[j] + (1 - z) * hh;
                    act[j] = z, act[u + j] = rr, act[2 * u + j] = hh;
                }
            }
            memcpy(rec, hp, w * sizeof *rec);
        }
    free(xp);
    free(hp);
}

static void free_state(layer_state *s)
{
    free(s->hs);
    free(s->cs);
    free(s->act);
    free(s->rec);
}

/* The stack's forward, keeping every layer's state. */
static void stack_forward(const ref_rnn *r, const double *x, layer_state *states)
{
    const double *X = x;
    for (uint32_t l = 0; l < r->layers; l++) {
        layer_forward(r, l, X, &states[l]);
        X = states[l].hs + (size_t)r->B * r->units[l]; /* h_1..h_T */
    }
}

void ref_rnn_forward(const ref_rnn *r, const double *x, double *hs)
{
    layer_state states[ENN_MAX_LAYERS];
    stack_forward(r, x, states);
    uint32_t top = r->layers - 1;
    memcpy(hs, states[top].hs + (size_t)r->B * r->units[top], (size_t)r->T * r->B * r->units[top] * sizeof *hs);
    for (uint32_t l = 0; l < r->layers; l++) free_state(&states[l]);
}

/* One layer's backward: dH [T, B, u] = dL/dh_1..h_T from above; writes dW, dU, db and
 * dX [T, B, in] (when not NULL). */
static void layer_backward(const ref_rnn *r, uint32_t l, const double *X, const layer_state *s, const double *dH,
                           double *dW, double *dU, double *db, double *dX)
{
    const uint32_t T = r->T, B = r->B, in = layer_in(r, l), u = r->units[l], G = ref_rnn_gates(r->kind), w = G * u;
    const double *W = r->W[l], *U = r->U[l];
    uint64_t nW, nU, nb;
    ref_rnn_param_sizes(r, l, &nW, &nU, &nb);
    memset(dW, 0, nW * sizeof *dW);
    memset(dU, 0, nU * sizeof *dU);
    memset(db, 0, nb * sizeof *db);
    if (dX) memset(dX, 0, (size_t)T * B * in * sizeof *dX);
    double *dh_next = calloc((size_t)B * u, sizeof(double)), *dc = calloc((size_t)B * u, sizeof(double));
    double *dxp = malloc(w * sizeof *dxp), *dhp = malloc(w * sizeof *dhp), *dh = malloc(u * sizeof *dh);
    for (uint32_t t = T; t-- > 0;)
        for (uint32_t n = 0; n < B; n++) {
            const double *x = X + ((size_t)t * B + n) * in, *h_prev = s->hs + ((size_t)t * B + n) * u;
            const double *h = s->hs + ((size_t)(t + 1) * B + n) * u;
            const double *act = s->act + ((size_t)t * B + n) * w, *rec = s->rec + ((size_t)t * B + n) * w;
            double *dhn = dh_next + (size_t)n * u, *dcn = dc + (size_t)n * u;
            for (uint32_t j = 0; j < u; j++) dh[j] = dH[((size_t)t * B + n) * u + j] + dhn[j];
            for (uint32_t j = 0; j < u; j++) {
                if (r->kind == ENN_MODEL_RNN) {
                    dxp[j] = dhp[j] = dh[j] * (1 - h[j] * h[j]);
                    dhn[j] = 0;
                } else if (r->kind == ENN_MODEL_LSTM) {
                    double i = act[j], f = act[u + j], g = act[2 * u + j], o = act[3 * u + j];
                    double c_prev = s->cs[((size_t)t * B + n) * u + j];
                    double tc = tanh(s->cs[((size_t)(t + 1) * B + n) * u + j]);
                    double dct = dcn[j] + dh[j] * o * (1 - tc * tc);
                    dxp[j] = dct * g * i * (1 - i);
                    dxp[u + j] = dct * c_prev * f * (1 - f);
                    dxp[2 * u + j] = dct * i * (1 - g * g);
                    dxp[3 * u + j] = dh[j] * tc * o * (1 - o);
                    for (uint32_t k = 0; k < 4; k++) dhp[k * u + j] = dxp[k * u + j];
                    dcn[j] = dct * f;
                    dhn[j] = 0;
                } else {
                    double z = act[j], rr = act[u + j], hh = act[2 * u + j];
                    double a = dh[j] * (1 - z) * (1 - hh * hh);
                    double dz = dh[j] * (h_prev[j] - hh) * z * (1 - z);
                    double dr = a * rec[2 * u + j] * rr * (1 - rr);
                    dxp[j] = dhp[j] = dz;
                    dxp[u + j] = dhp[u + j] = dr;
                    dxp[2 * u + j] = a;
                    dhp[2 * u + j] = a * rr;
                    dhn[j] = dh[j] * z; /* the direct path h_prev -> h */
                }
            }
            for (uint32_t j = 0; j < w; j++) {
                db[j] += dxp[j];
                if (r->kind == ENN_MODEL_GRU) db[w + j] += dhp[j];
                for (uint32_t k = 0; k < in; k++) {
                    dW[(size_t)k * w + j] += x[k] * dxp[j];
                    if (dX) dX[((size_t)t * B + n) * in + k] += dxp[j] * W[(size_t)k * w + j];
                }
                for (uint32_t k = 0; k < u; k++) {
                    dU[(size_t)k * w + j] += h_prev[k] * dhp[j];
                    dhn[k] += dhp[j] * U[(size_t)k * w + j];
                }
            }
        }
    free(dh_next);
    free(dc);
    free(dxp);
    free(dhp);
    free(dh);
}

void ref_rnn_backward(const ref_rnn *r, const double *x, const double *dhs, double *const *dW, double *const *dU,
                      double *const *db, double *dx)
{
    layer_state states[ENN_MAX_LAYERS];
    stack_forward(r, x, states);
    const uint32_t T = r->T, B = r->B;
    double *dH = malloc((size_t)T * B * r->units[r->layers - 1] * sizeof *dH);
    memcpy(dH, dhs, (size_t)T * B * r->units[r->layers - 1] * sizeof *dH);
    for (uint32_t l = r->layers; l-- > 0;) {
        const double *X = l ? states[l - 1].hs + (size_t)B * r->units[l - 1] : x;
        double *dX = l ? malloc((size_t)T * B * r->units[l - 1] * sizeof *dX) : dx;
        layer_backward(r, l, X, &states[l], dH, dW[l], dU[l], db[l], dX);
        free(dH);
        dH = l ? dX : NULL;
    }
    for (uint32_t l = 0; l < r->layers; l++) free_state(&states[l]);
}
