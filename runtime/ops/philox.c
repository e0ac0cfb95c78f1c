/* Philox4x32-10 and the add/multiply-only Box-Muller transform; see philox.h.
 * Must stay operation-for-operation identical to shaders/philox.glsl. */
#include "ops/philox.h"

#include <math.h>
#include <string.h>

/* A contracted a*b+c would round once instead of twice and break bit-equality with the
 * device (whose shader marks these values `precise`). ISO C11 mode already keeps GCC from
 * contracting; these make sure of it under other modes and compilers. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void enn_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void block_of(uint64_t seed, uint64_t stream, uint32_t index, uint32_t sub, uint32_t out[4])
{
    const uint32_t ctr[4] = {index >> 2, sub, (uint32_t)stream, (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    enn_philox4x32_10(ctr, key, out);
}

uint32_t enn_philox_u32(uint64_t seed, uint64_t stream, uint32_t index)
{
    uint32_t r[4];
    block_of(seed, stream, index, 0u, r);
    return r[index & 3u];
}

float enn_philox_uniform(uint64_t seed, uint64_t stream, uint32_t index)
{
    return (float)(enn_philox_u32(seed, stream, index) >> 8) * 0x1p-24f;
}

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint32_t float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* -2 ln(u) for u in (0, 1): u = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s),
 * s = (m - 1) / (m + 1), |s| <= 0.172, by its odd series to s^13 (error < 1e-9); the
 * reciprocal 1/(m+1) by three Newton steps from a linear guess (error < 1e-10). */
static float minus_two_log(float u)
{
    uint32_t bits = float_to_bits(u);
    int e = (int)((bits >> 23) & 0xffu) - 127;
    float m = bits_to_float((bits & 0x7fffffu) | 0x3f800000u);
    if (m > 1.41421356f) {
        m = m * 0.5f;
        e = e + 1;
    }
    float d = (m + 1.0f) * 0.5f;                  /* in [0.85, 1.21) */
    float y = 2.0f - d;                           /* 1/d to (1-d)^2 < 0.043 */
    y = y * (2.0f - d * y);
    y = y * (2.0f - d * y);
    y = y * (2.0f - d * y);
    float s = (m - 1.0f) * (y * 0.5f);
    float s2 = s * s;
    float p = 0.0769230769f;                      /* 1/13 */
    p = p * s2 + 0.0909090909f;
    p = p * s2 + 0.111111111f;
    p = p * s2 + 0.142857143f;
    p = p * s2 + 0.2f;
    p = p * s2 + 0.333333333f;
    p = p * s2 + 1.0f;
    float ln_m = 2.0f * s * p;
    float ln_u = (float)e * 0.693147181f + ln_m;
    return -2.0f * ln_u;
}

/* sqrt(x), x > 0: the bit-trick reciprocal square root and four Newton steps. */
static float sqrt_newton(float x)
{
    float y = bits_to_float(0x5f3759dfu - (float_to_bits(x) >> 1));
    for (int i = 0; i < 4; i++) y = y * (1.5f - 0.5f * x * y * y);
    return x * y;
}

/* cos and sin of 2 pi v for v in [0, 1): quadrant q = floor(4v), f = 4v - q (exact),
 * fold f into [0, 1/2] so the angle x is at most pi/4, then Taylor series to degree
 * 13 (sine) and 12 (cosine): truncation error < 1e-10. */
static void cos_sin_turns(float v, float *c_out, float *s_out)
{
    float v4 = v * 4.0f;
    int q = (int)v4;
    float f = v4 - (float)q;
    int swap = f > 0.5f;
    if (swap) f = 1.0f - f;
    float x = f * 1.57079633f;
    float x2 = x * x;
    float sv = 1.60590438e-10f;                   /* 1/13! */
    sv = sv * x2 - 2.50521084e-08f;               /* 1/11! */
    sv = sv * x2 + 2.75573192e-06f;
    sv = sv * x2 - 1.98412698e-04f;
    sv = sv * x2 + 8.33333333e-03f;
    sv = sv * x2 - 1.66666667e-01f;
    sv = sv * x2 + 1.0f;
    float sin_x = x * sv;
    float cv = 2.08767570e-09f;                   /* 1/12! */
    cv = cv * x2 - 2.75573192e-07f;
    cv = cv * x2 + 2.48015873e-05f;
    cv = cv * x2 - 1.38888889e-03f;
    cv = cv * x2 + 4.16666667e-02f;
    cv = cv * x2 - 0.5f;
    cv = cv * x2 + 1.0f;
    float c = swap ? sin_x : cv, s = swap ? cv : sin_x;
    switch (q & 3) {
    case 0: *c_out = c, *s_out = s; break;
    case 1: *c_out = -s, *s_out = c; break;
    case 2: *c_out = -c, *s_out = -s; break;
    default: *c_out = s, *s_out = -c; break;
    }
}

float enn_box_muller(uint32_t w0, uint32_t w1, int which)
{
    /* u1 = (2k + 1) 2^-24 with k the top 23 bits: exact, never 0 or 1. */
    float u1 = (float)(((w0 >> 9) << 1) | 1u) * 0x1p-24f;
    float u2 = (float)(w1 >> 8) * 0x1p-24f;
    float r = sqrt_newton(minus_two_log(u1));
    float c, s;
    cos_sin_turns(u2, &c, &s);
    return which ? r * s : r * c;
}

static float normal_sub(uint64_t seed, uint64_t stream, uint32_t index, uint32_t sub)
{
    uint32_t r[4];
    block_of(seed, stream, index, sub, r);
    uint32_t pair = index & 2u;
    return enn_box_muller(r[pair], r[pair + 1], (int)(index & 1u));
}

float enn_philox_normal(uint64_t seed, uint64_t stream, uint32_t index)
{
    return normal_sub(seed, stream, index, 0u);
}

float enn_philox_truncated_normal(uint64_t seed, uint64_t stream, uint32_t index)
{
    float x = 0.0f;
    for (uint32_t k = 0; k < 64; k++) {
        x = normal_sub(seed, stream, index, k);
        if (fabsf(x) <= 2.0f) return x;
    }
    return x < -2.0f ? -2.0f : x > 2.0f ? 2.0f : x;
}

uint32_t enn_dropout_threshold(float p)
{
    if (!(p > 0.0f)) return 0;
    double t = (double)p * 4294967296.0 + 0.5;
    return t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
}
