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

// philox_normal4 of four blocks at once, for CPU devices: column q of the result is
// philox_normal4(seed, stream, 4 block[q]), bit for bit. Each function below is the scalar
// one above, operation for operation on every component (selects in place of the branches
// pick the same values), written on vec4s of four blocks and on the two Box-Muller pairs of
// a block side by side (suffix _a: words x, y; _b: words z, w). llvmpipe runs a vec4
// operation as four 8-lane operations in a row, so eight dependency chains (the Newton
// steps and polynomials, each operation waiting on the one before) interleave instead of
// running one after the other: about twice as fast on lavapipe.
void philox4x32_10_x4(inout uvec4 w0, inout uvec4 w1, inout uvec4 w2, inout uvec4 w3, uvec2 key)
{
    for (int round = 0; round < 10; round++) {
        uvec4 hi0, lo0, hi1, lo1;
        umulExtended(uvec4(0xD2511F53u), w0, hi0, lo0);
        umulExtended(uvec4(0xCD9E8D57u), w2, hi1, lo1);
        w0 = hi1 ^ w1 ^ key.x;
        w1 = lo1;
        w2 = hi0 ^ w3 ^ key.y;
        w3 = lo0;
        key += uvec2(0x9E3779B9u, 0xBB67AE85u);
    }
}

// Box-Muller's radius sqrt(-2 ln u) (philox_sqrt of philox_minus_two_log) of u_a and u_b.
void philox_radius_x8(vec4 u_a, vec4 u_b, out vec4 r_a, out vec4 r_b)
{
    uvec4 bits_a = floatBitsToUint(u_a), bits_b = floatBitsToUint(u_b);
    ivec4 e_a = ivec4((bits_a >> 23) & 0xffu) - 127, e_b = ivec4((bits_b >> 23) & 0xffu) - 127;
    precise vec4 m_a = uintBitsToFloat((bits_a & 0x7fffffu) | 0x3f800000u);
    precise vec4 m_b = uintBitsToFloat((bits_b & 0x7fffffu) | 0x3f800000u);
    bvec4 big_a = greaterThan(m_a, vec4(1.41421356)), big_b = greaterThan(m_b, vec4(1.41421356));
    precise vec4 half_a = m_a * 0.5, half_b = m_b * 0.5;
    m_a = mix(m_a, half_a, big_a);
    m_b = mix(m_b, half_b, big_b);
    e_a += ivec4(big_a);
    e_b += ivec4(big_b);
    precise vec4 d_a = (m_a + 1.0) * 0.5, d_b = (m_b + 1.0) * 0.5;
    precise vec4 y_a = 2.0 - d_a, y_b = 2.0 - d_b;
    for (int i = 0; i < 3; i++) {
        y_a = y_a * (2.0 - d_a * y_a);
        y_b = y_b * (2.0 - d_b * y_b);
    }
    precise vec4 s_a = (m_a - 1.0) * (y_a * 0.5), s_b = (m_b - 1.0) * (y_b * 0.5);
    precise vec4 s2_a = s_a * s_a, s2_b = s_b * s_b;
    const float coef[6] = float[](0.0909090909, 0.111111111, 0.142857143, 0.2, 0.333333333, 1.0);
    precise vec4 p_a = vec4(0.0769230769), p_b = vec4(0.0769230769);
    for (int i = 0; i < 6; i++) {
        p_a = p_a * s2_a + coef[i];
        p_b = p_b * s2_b + coef[i];
    }
    precise vec4 ln_a = vec4(e_a) * 0.693147181 + 2.0 * s_a * p_a;
    precise vec4 ln_b = vec4(e_b) * 0.693147181 + 2.0 * s_b * p_b;
    precise vec4 x_a = -2.0 * ln_a, x_b = -2.0 * ln_b;
    precise vec4 q_a = uintBitsToFloat(0x5f3759dfu - (floatBitsToUint(x_a) >> 1));
    precise vec4 q_b = uintBitsToFloat(0x5f3759dfu - (floatBitsToUint(x_b) >> 1));
    for (int i = 0; i < 4; i++) {
        q_a = q_a * (1.5 - 0.5 * x_a * q_a * q_a);
        q_b = q_b * (1.5 - 0.5 * x_b * q_b * q_b);
    }
    precise vec4 ra = x_a * q_a, rb = x_b * q_b;
    r_a = ra;
    r_b = rb;
}

// philox_cos_sin_turns's quadrant step: (c, s) -> (c, s), (-s, c), (-c, -s), (s, -c).
void philox_quadrant_x4(ivec4 q, inout vec4 c, inout vec4 s)
{
    uvec4 quadrant = uvec4(q) & 3u;
    bvec4 q1 = equal(quadrant, uvec4(1u)), q2 = equal(quadrant, uvec4(2u)), q3 = equal(quadrant, uvec4(3u));
    vec4 c0 = c, s0 = s;
    c = mix(mix(mix(c0, -s0, q1), -c0, q2), s0, q3);
    s = mix(mix(mix(s0, c0, q1), -s0, q2), -c0, q3);
}

// philox_cos_sin_turns of v_a and v_b.
void philox_cos_sin_turns_x8(vec4 v_a, vec4 v_b, out vec4 c_a, out vec4 s_a, out vec4 c_b, out vec4 s_b)
{
    precise vec4 v4_a = v_a * 4.0, v4_b = v_b * 4.0;
    ivec4 q_a = ivec4(v4_a), q_b = ivec4(v4_b);
    precise vec4 f_a = v4_a - vec4(q_a), f_b = v4_b - vec4(q_b);
    bvec4 swap_a = greaterThan(f_a, vec4(0.5)), swap_b = greaterThan(f_b, vec4(0.5));
    precise vec4 g_a = 1.0 - f_a, g_b = 1.0 - f_b;
    f_a = mix(f_a, g_a, swap_a);
    f_b = mix(f_b, g_b, swap_b);
    precise vec4 x_a = f_a * 1.57079633, x_b = f_b * 1.57079633;
    precise vec4 x2_a = x_a * x_a, x2_b = x_b * x_b;
    const float sin_coef[6] = float[](-2.50521084e-08, 2.75573192e-06, -1.98412698e-04, 8.33333333e-03,
                                      -1.66666667e-01, 1.0);
    const float cos_coef[6] = float[](-2.75573192e-07, 2.48015873e-05, -1.38888889e-03, 4.16666667e-02, -0.5, 1.0);
    precise vec4 sv_a = vec4(1.60590438e-10), sv_b = sv_a, cv_a = vec4(2.08767570e-09), cv_b = cv_a;
    for (int i = 0; i < 6; i++) {
        sv_a = sv_a * x2_a + sin_coef[i];
        sv_b = sv_b * x2_b + sin_coef[i];
        cv_a = cv_a * x2_a + cos_coef[i];
        cv_b = cv_b * x2_b + cos_coef[i];
    }
    precise vec4 sin_a = x_a * sv_a, sin_b = x_b * sv_b;
    c_a = mix(cv_a, sin_a, swap_a);
    s_a = mix(sin_a, cv_a, swap_a);
    c_b = mix(cv_b, sin_b, swap_b);
    s_b = mix(sin_b, cv_b, swap_b);
    philox_quadrant_x4(q_a, c_a, s_a);
    philox_quadrant_x4(q_b, c_b, s_b);
}

mat4 philox_normal4_x4(uvec2 seed, uvec2 stream, uvec4 block)
{
    uvec4 w0 = block, w1 = uvec4(0u), w2 = uvec4(stream.x), w3 = uvec4(stream.y);
    philox4x32_10_x4(w0, w1, w2, w3, seed);
    precise vec4 u1_a = vec4(((w0 >> 9) << 1) | 1u) * 5.96046448e-08, u2_a = vec4(w1 >> 8) * 5.96046448e-08;
    precise vec4 u1_b = vec4(((w2 >> 9) << 1) | 1u) * 5.96046448e-08, u2_b = vec4(w3 >> 8) * 5.96046448e-08;
    vec4 r_a, r_b, c_a, s_a, c_b, s_b;
    philox_radius_x8(u1_a, u1_b, r_a, r_b);
    philox_cos_sin_turns_x8(u2_a, u2_b, c_a, s_a, c_b, s_b);
    precise vec4 n0 = r_a * c_a, n1 = r_a * s_a, n2 = r_b * c_b, n3 = r_b * s_b;
    return transpose(mat4(n0, n1, n2, n3));
}
