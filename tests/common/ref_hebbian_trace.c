#include "ref_hebbian_trace.h"

#include <stdlib.h>
#include <string.h>

static size_t trace_elems(uint32_t B, uint32_t N, uint32_t h, int ps)
{
    return (size_t)(ps ? B : 1) * N * h;
}

/* dH[N,h] (or [B,N,h]): the batch mean of outer(a_b, z_b), or each outer product. */
static void outer_products(uint32_t B, uint32_t N, uint32_t h, int ps, const double *a, const double *z, double *out)
{
    memset(out, 0, trace_elems(B, N, h, ps) * sizeof *out);
    for (uint32_t b = 0; b < B; b++) {
        double *o = out + (ps ? (size_t)b * N * h : 0);
        for (uint32_t n = 0; n < N; n++)
            for (uint32_t j = 0; j < h; j++)
                o[(size_t)n * h + j] += a[(size_t)b * N + n] * z[(size_t)b * h + j] / (ps ? 1.0 : (double)B);
    }
}

void ref_hebbian_trace_forward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *H, const double *a,
                               const double *z, const double *xi, double eta, double clip, double *H_new,
                               double *pre)
{
    size_t n = trace_elems(B, N, h, per_sample);
    double *d = malloc(n * sizeof *d);
    outer_products(B, N, h, per_sample, a, z, d);
    for (size_t i = 0; i < n; i++) {
        double p = (1 - eta) * H[i] + eta * (d[i] + (xi ? xi[i] : 0));
        if (pre) pre[i] = p;
        H_new[i] = p < -clip ? -clip : p > clip ? clip : p;
    }
    free(d);
}

void ref_hebbian_trace_backward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *H, const double *a,
                                const double *z, const double *xi, double eta, double clip, const double *dH_new,
                                double *dH, double *da, double *dz)
{
    size_t n = trace_elems(B, N, h, per_sample);
    double *pre = malloc(n * sizeof *pre), *hn = malloc(n * sizeof *hn), *g = malloc(n * sizeof *g);
    ref_hebbian_trace_forward(B, N, h, per_sample, H, a, z, xi, eta, clip, hn, pre);
    for (size_t i = 0; i < n; i++) {
        g[i] = pre[i] >= -clip && pre[i] <= clip ? dH_new[i] : 0; /* clip_by_value: bounds pass */
        dH[i] = (1 - eta) * g[i];
    }
    /* pre = ... + eta * scale * a[b,n] z[b,j] (scale 1/B shared, 1 per sample). */
    double scale = per_sample ? eta : eta / B;
    memset(da, 0, (size_t)B * N * sizeof *da);
    memset(dz, 0, (size_t)B * h * sizeof *dz);
    for (uint32_t b = 0; b < B; b++) {
        const double *gb = g + (per_sample ? (size_t)b * N * h : 0);
        for (uint32_t nn = 0; nn < N; nn++)
            for (uint32_t j = 0; j < h; j++) {
                double gv = scale * gb[(size_t)nn * h + j];
                da[(size_t)b * N + nn] += gv * z[(size_t)b * h + j];
                dz[(size_t)b * h + j] += gv * a[(size_t)b * N + nn];
            }
    }
    free(pre), free(hn), free(g);
}
