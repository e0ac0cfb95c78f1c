#include "ref_pooling.h"

#include <math.h>
#include <stdlib.h>

void ref_attention_pooling_forward(size_t T, size_t B, size_t h, const double *hs, const double *w, double *s,
                                   double *p, double *ctx)
{
    for (size_t b = 0; b < B; b++) {
        double m = -INFINITY, z = 0;
        for (size_t t = 0; t < T; t++) {
            double d = w[h];
            for (size_t k = 0; k < h; k++) d += hs[(t * B + b) * h + k] * w[k];
            s[t * B + b] = tanh(d);
            if (s[t * B + b] > m) m = s[t * B + b];
        }
        for (size_t t = 0; t < T; t++) z += exp(s[t * B + b] - m);
        for (size_t t = 0; t < T; t++) p[t * B + b] = exp(s[t * B + b] - m) / z;
        for (size_t k = 0; k < h; k++) {
            double c = 0;
            for (size_t t = 0; t < T; t++) c += p[t * B + b] * hs[(t * B + b) * h + k];
            ctx[b * h + k] = c;
        }
    }
}

void ref_attention_pooling_backward(size_t T, size_t B, size_t h, const double *hs, const double *w, const double *s,
                                    const double *p, const double *dctx, double *dhs, double *dw)
{
    double *dp = malloc(T * sizeof *dp);
    for (size_t k = 0; k <= h; k++) dw[k] = 0;
    for (size_t b = 0; b < B; b++) {
        double pdp = 0;
        for (size_t t = 0; t < T; t++) {
            double d = 0;
            for (size_t k = 0; k < h; k++) d += dctx[b * h + k] * hs[(t * B + b) * h + k];
            dp[t] = d;
            pdp += p[t * B + b] * d;
        }
        for (size_t t = 0; t < T; t++) {
            double st = s[t * B + b];
            double dpre = p[t * B + b] * (dp[t] - pdp) * (1 - st * st);
            for (size_t k = 0; k < h; k++) {
                size_t i = (t * B + b) * h + k;
                dhs[i] = p[t * B + b] * dctx[b * h + k] + dpre * w[k];
                dw[k] += dpre * hs[i];
            }
            dw[h] += dpre;
        }
    }
    free(dp);
}
