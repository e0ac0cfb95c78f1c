#include "ref_layer_norm.h"

#include <math.h>
#include <string.h>

static void row_stats(uint32_t C, const double *x, double eps, double *mean, double *rstd)
{
    double s = 0, v = 0;
    for (uint32_t c = 0; c < C; c++) s += x[c];
    *mean = s / C;
    for (uint32_t c = 0; c < C; c++) v += (x[c] - *mean) * (x[c] - *mean);
    *rstd = 1 / sqrt(v / C + eps);
}

void ref_layer_norm_forward(uint32_t R, uint32_t C, const double *x, const double *gain, const double *bias, double eps,
                            double *y)
{
    for (uint32_t r = 0; r < R; r++) {
        double mean, rstd;
        row_stats(C, x + (size_t)r * C, eps, &mean, &rstd);
        for (uint32_t c = 0; c < C; c++) y[(size_t)r * C + c] = (x[(size_t)r * C + c] - mean) * rstd * gain[c] + bias[c];
    }
}

/* With xhat = (x - mean) rstd: dxhat = dy gain, and
 * dx_i = rstd (dxhat_i - mean(dxhat) - xhat_i mean(dxhat xhat)). */
void ref_layer_norm_backward(uint32_t R, uint32_t C, const double *x, const double *gain, double eps, const double *dy,
                             double *dx, double *dgain, double *dbias)
{
    memset(dgain, 0, C * sizeof *dgain);
    memset(dbias, 0, C * sizeof *dbias);
    for (uint32_t r = 0; r < R; r++) {
        const double *xr = x + (size_t)r * C, *dyr = dy + (size_t)r * C;
        double mean, rstd, m1 = 0, m2 = 0;
        row_stats(C, xr, eps, &mean, &rstd);
        for (uint32_t c = 0; c < C; c++) {
            double xhat = (xr[c] - mean) * rstd, dxhat = dyr[c] * gain[c];
            m1 += dxhat / C;
            m2 += dxhat * xhat / C;
            dgain[c] += dyr[c] * xhat;
            dbias[c] += dyr[c];
        }
        for (uint32_t c = 0; c < C; c++) {
            double xhat = (xr[c] - mean) * rstd;
            dx[(size_t)r * C + c] = rstd * (dyr[c] * gain[c] - m1 - xhat * m2);
        }
    }
}
