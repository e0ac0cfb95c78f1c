/* The recurrence written as plainly as its definition, step by step and row by row. */
#include "ref_recurrence.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_recurrence_forward(const ref_recurrence_dims *d, double *u, double *hs, double *hp, double *mean,
                            double *rstd, const double *W_uh, const double *W_o, const double *b_o, const double *gain,
                            const double *bias)
{
    const size_t h = d->h, w = 3 * h, B = d->B;
    double *pre = malloc(h * sizeof *pre);
    for (size_t t = 0; t < d->T; t++)
        for (size_t b = 0; b < B; b++) {
            double *ut = u + (t * B + b) * w;
            const double *ht = hs + (t * B + b) * h;
            double *hn = hs + ((t + 1) * B + b) * h;
            for (size_t j = 0; j < w; j++) {
                double s = ut[j];
                for (size_t k = 0; k < h; k++) s += ht[k] * W_uh[k * w + j];
                ut[j] = s > 0 ? s : 0;
            }
            for (size_t j = 0; j < h; j++) {
                double s = b_o[j];
                for (size_t k = 0; k < w; k++) s += ut[k] * W_o[k * h + j];
                pre[j] = s > 0 ? s : 0;
            }
            if (!d->layer_norm) {
                memcpy(hn, pre, h * sizeof *hn);
                continue;
            }
            memcpy(hp + (t * B + b) * h, pre, h * sizeof *pre);
            double m = 0, v = 0;
            for (size_t j = 0; j < h; j++) m += pre[j];
            m /= (double)h;
            for (size_t j = 0; j < h; j++) v += (pre[j] - m) * (pre[j] - m);
            double r = 1 / sqrt(v / (double)h + d->eps);
            for (size_t j = 0; j < h; j++) hn[j] = (pre[j] - m) * r * gain[j] + bias[j];
            mean[t * B + b] = m;
            rstd[t * B + b] = r;
        }
    free(pre);
}

void ref_recurrence_backward(const ref_recurrence_dims *d, double *dhs, double *dhp, double *du, const double *u,
                             const double *hs, const double *hp, const double *mean, const double *rstd,
                             const double *W_uh, const double *W_o, const double *gain, double *dgain, double *dbias)
{
    const size_t h = d->h, w = 3 * h, B = d->B;
    if (d->layer_norm && dgain && dbias)
        for (size_t j = 0; j < h; j++) dgain[j] = dbias[j] = 0;
    for (size_t t = d->T; t-- > 0;)
        for (size_t b = 0; b < B; b++) {
            const double *g = dhs + ((t + 1) * B + b) * h;
            double *dp = dhp + (t * B + b) * h, *dut = du + (t * B + b) * w, *dh = dhs + (t * B + b) * h;
            const double *ut = u + (t * B + b) * w;
            if (d->layer_norm) {
                const double *x = hp + (t * B + b) * h;
                double m = mean[t * B + b], r = rstd[t * B + b], c1 = 0, c2 = 0;
                for (size_t j = 0; j < h; j++) {
                    double xhat = (x[j] - m) * r;
                    c1 += g[j] * gain[j];
                    c2 += g[j] * gain[j] * xhat;
                    if (dgain && dbias) dgain[j] += g[j] * xhat, dbias[j] += g[j];
                }
                c1 /= (double)h;
                c2 /= (double)h;
                for (size_t j = 0; j < h; j++) {
                    double xhat = (x[j] - m) * r;
                    double v = r * (g[j] * gain[j] - c1 - xhat * c2);
                    dp[j] = x[j] > 0 ? v : 0;
                }
            } else {
                const double *hn = hs + ((t + 1) * B + b) * h;
                for (size_t j = 0; j < h; j++) dp[j] = hn[j] > 0 ? g[j] : 0;
            }
            for (size_t k = 0; k < w; k++) {
                double s = 0;
                for (size_t j = 0; j < h; j++) s += dp[j] * W_o[k * h + j];
                dut[k] = ut[k] > 0 ? s : 0;
            }
            for (size_t j = 0; j < h; j++) {
                double s = 0;
                for (size_t k = 0; k < w; k++) s += dut[k] * W_uh[j * w + k];
                dh[j] += s;
            }
        }
}
