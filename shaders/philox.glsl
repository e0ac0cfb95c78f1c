// Counter-based random numbers: Philox4x32-10, and Box-Muller normals computed with
// additions and multiplications only. Operation for operation the same as
// runtime/ops/philox.c, so the host reproduces these streams bit for bit (see
// philox.h for the addressing: key = seed, counter = {index / 4, 0, stream}).
// Every floating-point value is `precise`: no fused multiply-add may change a rounding.

uvec4 philox4x32_10(uvec4 ctr, uvec2 key)
{
    for (int round = 0; round < 10; round++) {
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, ctr.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, ctr.z, hi1, lo1);
        ctr = uvec4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
        key += uvec2(0x9E3779B9u, 0xBB67AE85u);
    }
    return ctr;
}

// Counter word 1 is a sub-stream: 0 for every stream here except the retries of the
// truncated normal.
uvec4 philox_block_sub(uvec2 seed, uvec2 stream, uint index, uint sub)
{
    return philox4x32_10(uvec4(index >> 2, sub, stream.x, stream.y), seed);
}

uvec4 philox_block(uvec2 seed, uvec2 stream, uint index)
{
    return philox_block_sub(seed, stream, index, 0u);
}

uint philox_u32(uvec2 seed, uvec2 stream, uint index)
{
    return philox_block(seed, stream, index)[index & 3u];
}

float philox_uniform(uvec2 seed, uvec2 stream, uint index)
{
    precise float u = float(philox_u32(seed, stream, index) >> 8) * 5.96046448e-08; // 2^-24
    return u;
}

// -2 ln(u), u in (0, 1). See philox.c.
float philox_minus_two_log(float u)
{
    uint bits = floatBitsToUint(u);
    int e = int((bits >> 23) & 0xffu) - 127;
    precise float m = uintBitsToFloat((bits & 0x7fffffu) | 0x3f800000u);
    if (m > 1.41421356) {
        m = m * 0.5;
        e = e + 1;
    }
    precise float d = (m + 1.0) * 0.5;
    precise float y = 2.0 - d;
    y = y * (2.0 - d * y);
    y = y * (2.0 - d * y);
    y = y * (2.0 - d * y);
    precise float s = (m - 1.0) * (y * 0.5);
    precise float s2 = s * s;
    precise float p = 0.0769230769;
    p = p * s2 + 0.0909090909;
    p = p * s2 + 0.111111111;
    p = p * s2 + 0.142857143;
    p = p * s2 + 0.2;
    p = p * s2 + 0.333333333;
    p = p * s2 + 1.0;
    precise float ln_m = 2.0 * s * p;
    precise float ln_u = float(e) * 0.693147181 + ln_m;
    precise float r = -2.0 * ln_u;
    return r;
}

float philox_sqrt(float x)
{
    precise float y = uintBitsToFloat(0x5f3759dfu - (floatBitsToUint(x) >> 1));
    for (int i = 0; i < 4; i++) y = y * (1.5 - 0.5 * x * y * y);
    precise float r = x * y;
    return r;
}

// (cos, sin) of 2 pi v, v in [0, 1).
vec2 philox_cos_sin_turns(float v)
{
    precise float v4 = v * 4.0;
    int q = int(v4);
    precise float f = v4 - float(q);
    bool swap = f > 0.5;
    if (swap) f = 1.0 - f;
    precise float x = f * 1.57079633;
    precise float x2 = x * x;
    precise float sv = 1.60590438e-10;
    sv = sv * x2 - 2.50521084e-08;
    sv = sv * x2 + 2.75573192e-06;
    sv = sv * x2 - 1.98412698e-04;
    sv = sv * x2 + 8.33333333e-03;
    sv = sv * x2 - 1.66666667e-01;
    sv = sv * x2 + 1.0;
    precise float sin_x = x * sv;
    precise float cv = 2.08767570e-09;
    cv = cv * x2 - 2.75573192e-07;
    cv = cv * x2 + 2.48015873e-05;
    cv = cv * x2 - 1.38888889e-03;
    cv = cv * x2 + 4.16666667e-02;
    cv = cv * x2 - 0.5;
    cv = cv * x2 + 1.0;
    float c = swap ? sin_x : cv, s = swap ? cv : sin_x;
    uint quadrant = uint(q) & 3u;
    if (quadrant == 0u) return vec2(c, s);
    if (quadrant == 1u) return vec2(-s, c);
    if (quadrant == 2u) return vec2(-c, -s);
    return vec2(s, -c);
}

float philox_box_muller(uint w0, uint w1, bool sine)
{
    precise float u1 = float(((w0 >> 9) << 1) | 1u) * 5.96046448e-08;
    precise float u2 = float(w1 >> 8) * 5.96046448e-08;
    precise float r = philox_sqrt(philox_minus_two_log(u1));
    vec2 cs = philox_cos_sin_turns(u2);
    precise float n = r * (sine ? cs.y : cs.x);
    return n;
}

// Both normals of one Box-Muller pair: (cosine one, sine one).
vec2 philox_box_muller2(uint w0, uint w1)
{
    precise float u1 = float(((w0 >> 9) << 1) | 1u) * 5.96046448e-08;
    precise float u2 = float(w1 >> 8) * 5.96046448e-08;
    precise float r = philox_sqrt(philox_minus_two_log(u1));
    vec2 cs = philox_cos_sin_turns(u2);
    precise vec2 n = r * cs;
    return n;
}

float philox_normal_sub(uvec2 seed, uvec2 stream, uint index, uint sub)
{
    uvec4 r = philox_block_sub(seed, stream, index, sub);
    bool high = (index & 2u) != 0u;
    return philox_box_muller(high ? r.z : r.x, high ? r.w : r.y, (index & 1u) != 0u);
}

float philox_normal(uvec2 seed, uvec2 stream, uint index)
{
    return philox_normal_sub(seed, stream, index, 0u);
}

// philox_normal at indices idx .. idx + 3 (idx a multiple of 4): one Philox block and
// two Box-Muller pairs instead of four and four, bit for bit the scalar values.
vec4 philox_normal4(uvec2 seed, uvec2 stream, uint idx)
{
    uvec4 r = philox_block_sub(seed, stream, idx, 0u);
    vec2 lo = philox_box_muller2(r.x, r.y), hi = philox_box_muller2(r.z, r.w);
    return vec4(lo, hi);
}

// Standard normal truncated to [-2, 2] by rejection: attempt k draws from sub-stream k
// (the first attempt is philox_normal itself). 64 attempts all fail with probability
// 0.0455^64; then the last draw is clamped.
float philox_truncated_normal(uvec2 seed, uvec2 stream, uint index)
{
    float x = 0.0;
    for (uint k = 0u; k < 64u; k++) {
        x = philox_normal_sub(seed, stream, index, k);
        if (abs(x) <= 2.0) return x;
    }
    return clamp(x, -2.0, 2.0);
}

// Dropout keep test: P(keep) = 1 - threshold / 2^32 (threshold from enn_dropout_threshold).
bool philox_keep(uvec2 seed, uvec2 stream, uint index, uint threshold)
{
    return philox_u32(seed, stream, index) >= threshold;
}
