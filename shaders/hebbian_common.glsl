// The pieces of the Hebbian update that must round identically in every kernel that
// computes them (the forward kernels and the backward pass that recomputes the clip
// mask): `precise`, so no compiler may fuse a multiply-add differently in one of them.
// Needs philox.glsl.

// xi from the Philox stream: sigma * normal(seed, stream = step, index = element of H).
float hebbian_philox_noise(float sigma, uvec2 seed, uvec2 stream, uint idx)
{
    precise float v = sigma * philox_normal(seed, stream, idx);
    return v;
}

// The unclipped new trace: (1 - eta) H + eta (dH + xi), with decay = 1 - eta.
float hebbian_pre(float decay, float eta, float h_old, float d, float xi)
{
    precise float pre = decay * h_old + eta * (d + xi);
    return pre;
}

// The same, four consecutive elements at once (component for component the scalar
// operations above, so the roundings are identical).
vec4 hebbian_philox_noise4(float sigma, uvec2 seed, uvec2 stream, uint idx)
{
    precise vec4 v = sigma * philox_normal4(seed, stream, idx);
    return v;
}

vec4 hebbian_pre(float decay, float eta, vec4 h_old, vec4 d, vec4 xi)
{
    precise vec4 pre = decay * h_old + eta * (d + xi);
    return pre;
}

// The batch sum of step t's outer products at slot n, vector j (shared trace): `parts`
// interleaved partial sums (b = p, p + parts, ...) added in order p = 0, 1, ... . The
// update may compute the partial sums in parallel (GPUs); every kernel that recomputes
// the update's clip mask sums the same way, so the roundings agree bit for bit. D must be
// `precise`; A is a [B, N] float array, Z a [B, hv] array of D's type.
#define HEBBIAN_BATCH_SUM(D, A, Z, B, N, hv, n, j, parts)                              \
    for (uint p_ = 0u; p_ < (parts); p_++) {                                           \
        precise VT s_ = VT(0.0);                                                       \
        for (uint b_ = p_; b_ < (B); b_ += (parts)) s_ += A[b_ * (N) + (n)] * Z[b_ * (hv) + (j)]; \
        D = p_ == 0u ? s_ : D + s_;                                                    \
    }

// hebbian_philox_noise4 of four blocks at once (philox_normal4_x4, CPU devices): column q
// is the noise of elements 4 block[q] .. 4 block[q] + 3, bit for bit.
mat4 hebbian_philox_noise4_x4(float sigma, uvec2 seed, uvec2 stream, uvec4 block)
{
    mat4 n = philox_normal4_x4(seed, stream, block);
    precise vec4 v0 = sigma * n[0], v1 = sigma * n[1], v2 = sigma * n[2], v3 = sigma * n[3];
    return mat4(v0, v1, v2, v3);
}
