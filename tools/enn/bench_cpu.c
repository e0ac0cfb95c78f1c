/* The CPU baselines of `enn bench ops` (see bench_cpu.h): float, one thread. */
#include "bench_cpu.h"

#include <math.h>
#include <string.h>

#include "ops/philox.h"

/* 1 / max(|x|, 1e-6): the kernels' clamp sqrt(max(sum of squares, 1e-12)). */
static float inv_norm(const float *x, uint32_t n)
{
    float ss = 0;
    for (uint32_t i = 0; i < n; i++) ss += x[i] * x[i];
    return 1.0f / sqrtf(fmaxf(ss, 1e-12f));
}

/* a_b = softmax_n(cos(z_b, E_n) / tau_e); rE [N] gets 1/|E_n|. */
static void attention_row(uint32_t N, uint32_t h, const float *zb, float rz, const float *E, const float *rE,
                          float tau_e, float *ab)
{
    float mx = -INFINITY, sum = 0;
    for (uint32_t n = 0; n < N; n++) {
        float d = 0;
        for (uint32_t j = 0; j < h; j++) d += zb[j] * E[(size_t)n * h + j];
        ab[n] = d * rz * rE[n] / tau_e;
        mx = fmaxf(mx, ab[n]);
    }
    for (uint32_t n = 0; n < N; n++) sum += ab[n] = expf(ab[n] - mx);
    for (uint32_t n = 0; n < N; n++) ab[n] /= sum;
}

void cpu_cosine_attention_forward(uint32_t B, uint32_t N, uint32_t h, const float *z, const float *E, float tau_e,
                                  float *a, float *m)
{
    float rE[N];
    for (uint32_t n = 0; n < N; n++) rE[n] = inv_norm(E + (size_t)n * h, h);
    for (uint32_t b = 0; b < B; b++) {
        const float *zb = z + (size_t)b * h;
        float *ab = a + (size_t)b * N, *mb = m + (size_t)b * h;
        attention_row(N, h, zb, inv_norm(zb, h), E, rE, tau_e, ab);
        for (uint32_t j = 0; j < h; j++) mb[j] = 0;
        for (uint32_t n = 0; n < N; n++)
            for (uint32_t j = 0; j < h; j++) mb[j] += ab[n] * E[(size_t)n * h + j];
    }
}

void cpu_cosine_attention_backward(uint32_t B, uint32_t N, uint32_t h, const float *z, const float *E, float tau_e,
                                   const float *dm, float *dz, float *dE, float *scratch)
{
    float *dEn = scratch, *dEdirect = scratch + (size_t)N * h;   /* through the norms / through m = a E */
    float *rE = dEdirect + (size_t)N * h, *ab = rE + N, *dzn = ab + N;
    memset(dEn, 0, 2 * (size_t)N * h * sizeof *dEn);
    for (uint32_t n = 0; n < N; n++) rE[n] = inv_norm(E + (size_t)n * h, h);
    for (uint32_t b = 0; b < B; b++) {
        const float *zb = z + (size_t)b * h, *dmb = dm + (size_t)b * h;
        float rz = inv_norm(zb, h);
        attention_row(N, h, zb, rz, E, rE, tau_e, ab);
        /* da_n = dm . E_n; softmax: ds_n = a_n (da_n - sum_k a_k da_k) / tau_e on s = zn . En */
        float c = 0, ds[N];
        for (uint32_t n = 0; n < N; n++) {
            float d = 0;
            for (uint32_t j = 0; j < h; j++) {
                d += dmb[j] * E[(size_t)n * h + j];
                dEdirect[(size_t)n * h + j] += ab[n] * dmb[j];
            }
            ds[n] = d;
            c += ab[n] * d;
        }
        for (uint32_t n = 0; n < N; n++) ds[n] = ab[n] * (ds[n] - c) / tau_e;
        /* d zn = sum_n ds_n En; d En accumulates ds_n zn over the batch */
        for (uint32_t j = 0; j < h; j++) dzn[j] = 0;
        for (uint32_t n = 0; n < N; n++)
            for (uint32_t j = 0; j < h; j++) {
                dzn[j] += ds[n] * E[(size_t)n * h + j] * rE[n];
                dEn[(size_t)n * h + j] += ds[n] * zb[j] * rz;
            }
        /* through zn = z / |z|: (dzn - zn (zn . dzn)) / |z| */
        float dot = 0;
        for (uint32_t j = 0; j < h; j++) dot += zb[j] * rz * dzn[j];
        for (uint32_t j = 0; j < h; j++) dz[(size_t)b * h + j] = (dzn[j] - zb[j] * rz * dot) * rz;
    }
    for (uint32_t n = 0; n < N; n++) {
        const float *En = E + (size_t)n * h;
        float *g = dEn + (size_t)n * h, dot = 0;
        for (uint32_t j = 0; j < h; j++) dot += En[j] * rE[n] * g[j];
        for (uint32_t j = 0; j < h; j++)
            dE[(size_t)n * h + j] = (g[j] - En[j] * rE[n] * dot) * rE[n] + dEdirect[(size_t)n * h + j];
    }
}

/* pre = (1 - eta) H + eta mean_b outer(a_b, z_b), into out. */
static void hebbian_pre(uint32_t B, uint32_t N, uint32_t h, const float *H, const float *a, const float *z,
                        float eta, float *out)
{
    for (uint32_t n = 0; n < N; n++)
        for (uint32_t j = 0; j < h; j++) {
            float d = 0;
            for (uint32_t b = 0; b < B; b++) d += a[(size_t)b * N + n] * z[(size_t)b * h + j];
            out[(size_t)n * h + j] = (1 - eta) * H[(size_t)n * h + j] + eta * (d / B);
        }
}

void cpu_hebbian_trace_forward(uint32_t B, uint32_t N, uint32_t h, const float *H, const float *a, const float *z,
                               float eta, float clip, float *H_new)
{
    hebbian_pre(B, N, h, H, a, z, eta, H_new);
    for (size_t i = 0; i < (size_t)N * h; i++) H_new[i] = fminf(fmaxf(H_new[i], -clip), clip);
}

void cpu_hebbian_trace_backward(uint32_t B, uint32_t N, uint32_t h, const float *H, const float *a, const float *z,
                                float eta, float clip, const float *dH_new, float *dH, float *da, float *dz,
                                float *scratch)
{
    float *g = scratch;
    hebbian_pre(B, N, h, H, a, z, eta, g);
    for (size_t i = 0; i < (size_t)N * h; i++) {
        g[i] = g[i] >= -clip && g[i] <= clip ? dH_new[i] : 0;
        dH[i] = (1 - eta) * g[i];
    }
    float scale = eta / B;
    for (uint32_t b = 0; b < B; b++) {
        const float *ab = a + (size_t)b * N, *zb = z + (size_t)b * h;
        for (uint32_t n = 0; n < N; n++) {
            float d = 0;
            for (uint32_t j = 0; j < h; j++) d += g[(size_t)n * h + j] * zb[j];
            da[(size_t)b * N + n] = scale * d;
        }
        for (uint32_t j = 0; j < h; j++) dz[(size_t)b * h + j] = 0;
        for (uint32_t n = 0; n < N; n++)
            for (uint32_t j = 0; j < h; j++) dz[(size_t)b * h + j] += scale * g[(size_t)n * h + j] * ab[n];
    }
}

void cpu_effective_memory_forward(size_t copies, size_t n, const float *M, const float *H, float alpha, float *E)
{
    for (size_t c = 0; c < copies; c++)
        for (size_t i = 0; i < n; i++) E[c * n + i] = M[i] + alpha * H[c * n + i];
}

void cpu_effective_memory_backward(size_t copies, size_t n, const float *dE, float alpha, float *dM, float *dH)
{
    for (size_t i = 0; i < n; i++) dM[i] = 0;
    for (size_t c = 0; c < copies; c++)
        for (size_t i = 0; i < n; i++) {
            dM[i] += dE[c * n + i];
            dH[c * n + i] = alpha * dE[c * n + i];
        }
}

void cpu_layer_norm_forward(uint32_t R, uint32_t C, const float *x, const float *gain, const float *bias, float eps,
                            float *y, float *mean, float *rstd)
{
    for (uint32_t r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * C;
        float s = 0, v = 0;
        for (uint32_t c = 0; c < C; c++) s += xr[c];
        float mu = s / C;
        for (uint32_t c = 0; c < C; c++) v += (xr[c] - mu) * (xr[c] - mu);
        float rs = 1.0f / sqrtf(v / C + eps);
        for (uint32_t c = 0; c < C; c++) y[(size_t)r * C + c] = (xr[c] - mu) * rs * gain[c] + bias[c];
        mean[r] = mu;
        rstd[r] = rs;
    }
}

void cpu_layer_norm_backward(uint32_t R, uint32_t C, const float *x, const float *gain, const float *mean,
                             const float *rstd, const float *dy, float *dx, float *dgain, float *dbias)
{
    for (uint32_t c = 0; c < C; c++) dgain[c] = dbias[c] = 0;
    for (uint32_t r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * C, *dyr = dy + (size_t)r * C;
        float mu = mean[r], rs = rstd[r], s1 = 0, s2 = 0;
        for (uint32_t c = 0; c < C; c++) {
            float xhat = (xr[c] - mu) * rs, g = dyr[c] * gain[c];
            s1 += g;
            s2 += g * xhat;
            dgain[c] += dyr[c] * xhat;
            dbias[c] += dyr[c];
        }
        s1 /= C;
        s2 /= C;
        for (uint32_t c = 0; c < C; c++) {
            float xhat = (xr[c] - mu) * rs;
            dx[(size_t)r * C + c] = (dyr[c] * gain[c] - s1 - xhat * s2) * rs;
        }
    }
}

float cpu_xent_forward(uint32_t R, uint32_t V, const float *logits, const uint32_t *labels, float *loss, float *lse)
{
    float total = 0;
    for (uint32_t r = 0; r < R; r++) {
        const float *x = logits + (size_t)r * V;
        float mx = -INFINITY, s = 0;
        for (uint32_t v = 0; v < V; v++) mx = fmaxf(mx, x[v]);
        for (uint32_t v = 0; v < V; v++) s += expf(x[v] - mx);
        lse[r] = mx + logf(s);
        loss[r] = lse[r] - x[labels[r]];
        total += loss[r];
    }
    return total / R;
}

void cpu_xent_backward(uint32_t R, uint32_t V, const float *logits, const uint32_t *labels, const float *lse,
                       float scale, float *dlogits)
{
    float f = scale / R;
    for (uint32_t r = 0; r < R; r++)
        for (uint32_t v = 0; v < V; v++) {
            size_t i = (size_t)r * V + v;
            dlogits[i] = f * (expf(logits[i] - lse[r]) - (v == labels[r] ? 1.0f : 0.0f));
        }
}

void cpu_embedding_forward(uint32_t rows, uint32_t dim, const float *table, const uint32_t *ids, float *out)
{
    for (uint32_t r = 0; r < rows; r++) memcpy(out + (size_t)r * dim, table + (size_t)ids[r] * dim, dim * sizeof *out);
}

void cpu_embedding_backward(uint32_t rows, uint32_t dim, const uint32_t *ids, const float *dout, float *dtable)
{
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < dim; c++) dtable[(size_t)ids[r] * dim + c] += dout[(size_t)r * dim + c];
}

void cpu_add(size_t n, const float *a, const float *b, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void cpu_tanh_forward(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void cpu_tanh_backward(size_t n, const float *y, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
}

void cpu_sum_rows(uint32_t R, uint32_t C, const float *x, float *out)
{
    for (uint32_t c = 0; c < C; c++) out[c] = 0;
    for (uint32_t r = 0; r < R; r++)
        for (uint32_t c = 0; c < C; c++) out[c] += x[(size_t)r * C + c];
}

/* Sums in chunks of 4096, then the chunks' sums: one float accumulator over 24.5M
 * squares would stall once its ulp passes the addends (the device sums per chunk too). */
float cpu_l2_norm(size_t n, const float *x)
{
    float total = 0;
    for (size_t first = 0; first < n; first += 4096) {
        size_t end = n - first < 4096 ? n : first + 4096;
        float s = 0;
        for (size_t i = first; i < end; i++) s += x[i] * x[i];
        total += s;
    }
    return sqrtf(total);
}

void cpu_dropout_forward(size_t n, const float *x, float p, uint64_t seed, uint64_t stream, float *y)
{
    uint32_t threshold = enn_dropout_threshold(p);
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) y[i] = enn_philox_keep(seed, stream, (uint32_t)i, threshold) ? x[i] * scale : 0.0f;
}

void cpu_adam(size_t n, float *p, const float *g, float *m, float *v, float alpha, float beta1, float beta2,
              float epsilon)
{
    for (size_t i = 0; i < n; i++) {
        m[i] += (g[i] - m[i]) * (1 - beta1);
        v[i] += (g[i] * g[i] - v[i]) * (1 - beta2);
        p[i] -= alpha * m[i] / (sqrtf(v[i]) + epsilon);
    }
}

void cpu_attention_pooling_forward(uint32_t T, uint32_t B, uint32_t h, const float *hs, const float *w, float *s,
                                   float *p, float *ctx)
{
    for (uint32_t b = 0; b < B; b++) {
        float mx = -INFINITY, sum = 0;
        for (uint32_t t = 0; t < T; t++) {
            const float *x = hs + ((size_t)t * B + b) * h;
            float d = w[h];
            for (uint32_t k = 0; k < h; k++) d += x[k] * w[k];
            s[t * B + b] = tanhf(d);
            mx = fmaxf(mx, s[t * B + b]);
        }
        for (uint32_t t = 0; t < T; t++) sum += p[t * B + b] = expf(s[t * B + b] - mx);
        for (uint32_t t = 0; t < T; t++) p[t * B + b] /= sum;
        for (uint32_t k = 0; k < h; k++) ctx[(size_t)b * h + k] = 0;
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t k = 0; k < h; k++) ctx[(size_t)b * h + k] += p[t * B + b] * hs[((size_t)t * B + b) * h + k];
    }
}

void cpu_attention_pooling_backward(uint32_t T, uint32_t B, uint32_t h, const float *hs, const float *w,
                                    const float *s, const float *p, const float *dctx, float *dhs, float *dw,
                                    float *scratch)
{
    float *dp = scratch;
    for (uint32_t b = 0; b < B; b++) {
        const float *dc = dctx + (size_t)b * h;
        float pdp = 0;
        for (uint32_t t = 0; t < T; t++) {
            const float *x = hs + ((size_t)t * B + b) * h;
            float d = 0;
            for (uint32_t k = 0; k < h; k++) d += dc[k] * x[k];
            dp[t] = d;
            pdp += p[t * B + b] * d;
        }
        for (uint32_t t = 0; t < T; t++) {
            float st = s[t * B + b], pt = p[t * B + b];
            float dpre = pt * (dp[t] - pdp) * (1 - st * st);
            const float *x = hs + ((size_t)t * B + b) * h;
            float *dx = dhs + ((size_t)t * B + b) * h;
            for (uint32_t k = 0; k < h; k++) {
                dx[k] = pt * dc[k] + dpre * w[k];
                dw[k] += dpre * x[k];
            }
            dw[h] += dpre;
        }
    }
}

void cpu_recurrence_forward(uint32_t T, uint32_t B, uint32_t h, const float *W_uh, const float *W_o, const float *b_o,
                            const float *gain, const float *bias, float eps, float *u, float *hs, float *hp,
                            float *mean, float *rstd)
{
    size_t w = 3 * (size_t)h, R = (size_t)B;
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < R; b++) {
            float *ut = u + (t * R + b) * w, *pt = hp + (t * R + b) * h;
            const float *ht = hs + (t * R + b) * h;
            for (size_t j = 0; j < w; j++) {
                float s = ut[j];
                for (size_t k = 0; k < h; k++) s += ht[k] * W_uh[k * w + j];
                ut[j] = s > 0 ? s : 0;
            }
            for (size_t j = 0; j < h; j++) {
                float s = b_o[j];
                for (size_t k = 0; k < w; k++) s += ut[k] * W_o[k * h + j];
                pt[j] = s > 0 ? s : 0;
            }
        }
        cpu_layer_norm_forward(B, h, hp + t * R * h, gain, bias, eps, hs + (t + 1) * R * h, mean + t * R,
                               rstd + t * R);
    }
}

void cpu_recurrence_backward(uint32_t T, uint32_t B, uint32_t h, const float *W_uh, const float *W_o,
                             const float *gain, const float *u, const float *hp, const float *mean, const float *rstd,
                             float *dhs, float *dhp, float *du)
{
    size_t w = 3 * (size_t)h, R = (size_t)B;
    for (size_t t = T; t-- > 0;)
        for (size_t b = 0; b < R; b++) {
            const float *g = dhs + ((t + 1) * R + b) * h, *x = hp + (t * R + b) * h, *ut = u + (t * R + b) * w;
            float *dp = dhp + (t * R + b) * h, *dut = du + (t * R + b) * w, *dh = dhs + (t * R + b) * h;
            float mu = mean[t * R + b], rs = rstd[t * R + b], s1 = 0, s2 = 0;
            for (size_t j = 0; j < h; j++) {
                s1 += g[j] * gain[j];
                s2 += g[j] * gain[j] * (x[j] - mu) * rs;
            }
            s1 /= h;
            s2 /= h;
            for (size_t j = 0; j < h; j++) {
                float v = rs * (g[j] * gain[j] - s1 - (x[j] - mu) * rs * s2);
                dp[j] = x[j] > 0 ? v : 0;
            }
            for (size_t k = 0; k < w; k++) {
                float s = 0;
                for (size_t j = 0; j < h; j++) s += dp[j] * W_o[k * h + j];
                dut[k] = ut[k] > 0 ? s : 0;
            }
            for (size_t j = 0; j < h; j++) {
                float s = 0;
                for (size_t k = 0; k < w; k++) s += dut[k] * W_uh[j * w + k];
                dh[j] += s;
            }
        }
}
