#include "ref_cosine_attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x/ r with r = sqrt(max(|x|^2, 1e-12)); returns r and whether the clamp was active. */
static double normalise(const double *x, uint32_t n, double *xn, int *clamped)
{
    double ss = 0;
    for (uint32_t i = 0; i < n; i++) ss += x[i] * x[i];
    *clamped = ss < 1e-12; /* tf.maximum passes gradient to the sum of squares on ties */
    double r = sqrt(fmax(ss, 1e-12));
    for (uint32_t i = 0; i < n; i++) xn[i] = x[i] / r;
    return r;
}

/* Gradient of x through xn = x / r(x): (dxn - xn (xn . dxn)) / r, or dxn / r when clamped. */
static void normalise_backward(const double *xn, const double *dxn, uint32_t n, double r, int clamped, double *dx)
{
    double dot = 0;
    for (uint32_t i = 0; i < n; i++) dot += xn[i] * dxn[i];
    for (uint32_t i = 0; i < n; i++) dx[i] = (dxn[i] - (clamped ? 0 : xn[i] * dot)) / r;
}

/* Everything for batch row b: zn, En (of that row's E), the cosines s, a. shift (may be
 * NULL) is added to the cosines before the softmax. */
static void row_forward(uint32_t N, uint32_t h, const double *zb, const double *Eb, double tau_e,
                        const double *shift, double *zn, double *rz, int *zc, double *En, double *rE, int *Ec,
                        double *s, double *ab)
{
    *rz = normalise(zb, h, zn, zc);
    for (uint32_t n = 0; n < N; n++) rE[n] = normalise(Eb + (size_t)n * h, h, En + (size_t)n * h, &Ec[n]);
    double mx = -INFINITY;
    for (uint32_t n = 0; n < N; n++) {
        double d = 0;
        for (uint32_t j = 0; j < h; j++) d += zn[j] * En[(size_t)n * h + j];
        s[n] = d;
        mx = fmax(mx, (d + (shift ? shift[n] : 0)) / tau_e);
    }
    double sum = 0;
    for (uint32_t n = 0; n < N; n++) sum += ab[n] = exp((s[n] + (shift ? shift[n] : 0)) / tau_e - mx);
    for (uint32_t n = 0; n < N; n++) ab[n] /= sum;
}

void ref_cosine_attention_forward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *z,
                                  const double *E, double tau_e, double *a, double *m)
{
    ref_cosine_attention_forward_shifted(B, N, h, per_sample, z, E, tau_e, NULL, a, m, NULL);
}

void ref_cosine_attention_forward_shifted(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *z,
                                          const double *E, double tau_e, const double *shift, double *a, double *m,
                                          double *cos)
{
    double *zn = malloc(h * sizeof *zn), *En = malloc((size_t)N * h * sizeof *En);
    double *rE = malloc(N * sizeof *rE), *s = malloc(N * sizeof *s);
    int *Ec = malloc(N * sizeof *Ec), zc;
    double rz;
    for (uint32_t b = 0; b < B; b++) {
        const double *Eb = E + (per_sample ? (size_t)b * N * h : 0);
        row_forward(N, h, z + (size_t)b * h, Eb, tau_e, shift ? shift + (size_t)b * N : NULL, zn, &rz, &zc, En, rE,
                    Ec, s, a + (size_t)b * N);
        if (cos) memcpy(cos + (size_t)b * N, s, N * sizeof *s);
        for (uint32_t j = 0; j < h; j++) {
            double acc = 0;
            for (uint32_t n = 0; n < N; n++) acc += a[(size_t)b * N + n] * Eb[(size_t)n * h + j];
            m[(size_t)b * h + j] = acc;
        }
    }
    free(zn), free(En), free(rE), free(s), free(Ec);
}

void ref_cosine_attention_backward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *z,
                                   const double *E, double tau_e, const double *dm, const double *da_in, double *dz,
                                   double *dE)
{
    size_t Eh = (size_t)N * h;
    double *zn = malloc(h * sizeof *zn), *En = malloc(Eh * sizeof *En), *rE = malloc(N * sizeof *rE);
    double *s = malloc(N * sizeof *s), *ab = malloc(N * sizeof *ab), *da = malloc(N * sizeof *da);
    double *dzn = malloc(h * sizeof *dzn), *dEn = malloc(Eh * sizeof *dEn), *dEb = malloc(h * sizeof *dEb);
    int *Ec = malloc(N * sizeof *Ec), zc;
    double rz;
    memset(dE, 0, (per_sample ? B : 1) * Eh * sizeof *dE);
    for (uint32_t b = 0; b < B; b++) {
        const double *Eb = E + (per_sample ? (size_t)b * Eh : 0);
        double *dEout = dE + (per_sample ? (size_t)b * Eh : 0);
        const double *dmb = dm + (size_t)b * h;
        row_forward(N, h, z + (size_t)b * h, Eb, tau_e, NULL, zn, &rz, &zc, En, rE, Ec, s, ab);
        /* m = a E: da_n = dm . E_n, and dE_n gets a_n dm. */
        for (uint32_t n = 0; n < N; n++) {
            double d = da_in ? da_in[(size_t)b * N + n] : 0;
            for (uint32_t j = 0; j < h; j++) {
                d += dmb[j] * Eb[(size_t)n * h + j];
                dEout[(size_t)n * h + j] += ab[n] * dmb[j];
            }
            da[n] = d;
        }
        /* softmax: dlogit_n = a_n (da_n - sum_k a_k da_k); logit = s / tau_e. */
        double c = 0;
        for (uint32_t n = 0; n < N; n++) c += ab[n] * da[n];
        for (uint32_t j = 0; j < h; j++) dzn[j] = 0;
        for (uint32_t n = 0; n < N; n++) {
            double ds = ab[n] * (da[n] - c) / tau_e;
            for (uint32_t j = 0; j < h; j++) {
                dzn[j] += ds * En[(size_t)n * h + j];
                dEn[(size_t)n * h + j] = ds * zn[j];
            }
        }
        normalise_backward(zn, dzn, h, rz, zc, dz + (size_t)b * h);
        for (uint32_t n = 0; n < N; n++) {
            normalise_backward(En + (size_t)n * h, dEn + (size_t)n * h, h, rE[n], Ec[n], dEb);
            for (uint32_t j = 0; j < h; j++) dEout[(size_t)n * h + j] += dEb[j];
        }
    }
    free(zn), free(En), free(rE), free(s), free(ab), free(da), free(dzn), free(dEn), free(dEb), free(Ec);
}
