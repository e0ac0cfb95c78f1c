#include "ref_gemm.h"

#include <math.h>
#include <string.h>

void ref_gemm(const ref_gemm_args *g, double *out, double *abs_sum)
{
    for (uint32_t bt = 0; bt < g->batch; bt++) {
        const float *a = g->a + bt * g->stride_a, *b = g->b + bt * g->stride_b;
        uint64_t c0 = bt * g->stride_c;
        for (uint32_t i = 0; i < g->m; i++)
            for (uint32_t j = 0; j < g->n; j++) {
                double s = 0, sa = 0;
                for (uint32_t p = 0; p < g->k; p++) {
                    double av = g->trans_a ? a[(uint64_t)p * g->lda + i] : a[(uint64_t)i * g->lda + p];
                    double bv = g->trans_b ? b[(uint64_t)j * g->ldb + p] : b[(uint64_t)p * g->ldb + j];
                    s += av * bv;
                    sa += fabs(av * bv);
                }
                uint64_t ci = c0 + (uint64_t)i * g->ldc + j;
                double v = g->alpha * s;
                sa *= fabs(g->alpha);
                if (g->beta != 0) {
                    v += g->beta * g->c_in[ci];
                    sa += fabs(g->beta * g->c_in[ci]);
                }
                if (g->bias) {
                    v += g->bias[j];
                    sa += fabs(g->bias[j]);
                }
                if (g->act == 1) v = v > 0 ? v : 0;
                else if (g->act == 2) v = tanh(v);
                else if (g->act == 3) v = 1 / (1 + exp(-v));
                out[ci] = v;
                if (abs_sum) abs_sum[ci] = sa;
            }
    }
}

uint16_t ref_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {                          /* subnormal half (or zero) */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;  /* may carry into the exponent: correct */
    return (uint16_t)(sign | h);
}

float ref_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    uint32_t x = exp == 31 ? sign | 0x7f800000u | (man << 13) : sign | ((exp - 15 + 127) << 23) | (man << 13);
    memcpy(&f, &x, 4);
    return f;
}
