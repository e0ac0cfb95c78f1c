#version 450
#extension GL_GOOGLE_include_directive : require
// The Hebbian trace update (ENN-SPEC, one time step):
//   pre   = (1 - eta) H + eta (dH + xi)
//   H_new = clip(pre, -c, c)
//   dH    = mean_b outer(a_b, z_b)   [N,h]     (shared trace)
//         = outer(a_b, z_b)          [B,N,h]   (per-sample trace)
//   xi    = sigma * Philox normal (seed, stream = step, index = element of H), a
//           caller's buffer, or 0.
// Variants:
//   hebbian_trace                  forward, one invocation per element of H
//   hebbian_trace_backward_trace   g = dH_new where -c <= pre <= c (bounds pass, as in
//                                  TensorFlow's clip_by_value), else 0;
//                                  dH_prev = (1 - eta) g; G = g_scale g (the gradient of
//                                  the outer products: eta/B shared, eta per sample)
//   hebbian_trace_backward_inputs  da[b,n] = sum_j G[n,j] z[b,j], dz[b,j] = sum_n G[n,j] a[b,n]
// The backward pass recomputes pre with the same `precise` operations as the forward
// pass, so its clip mask is exactly the forward pass's.
//
//! variant hebbian_trace_backward_trace -DBACKWARD_TRACE=1
//! variant hebbian_trace_backward_inputs -DBACKWARD_INPUTS=1
layout(local_size_x_id = 0) in;
#include "philox.glsl"
#include "hebbian_common.glsl"

layout(push_constant) uniform Push {
    uint B, N, h;
    uint per_sample;
    uvec2 seed;
    uvec2 stream;
    uint noise_mode;   // 0 none, 1 Philox, 2 buffer xi
    float decay;       // 1 - eta
    float eta;
    float inv_batch;   // 1/B: the batch mean divides by the actual batch size
    float sigma;
    float clip;
    float beta_dH;     // dH_prev = new + beta_dH * dH_prev (0 or 1)
    float beta_da;
    float beta_dz;
    float g_scale;
} pc;

uint flat_index()
{
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

#if !defined(BACKWARD_INPUTS)
layout(std430, set = 0, binding = 0) readonly buffer Hm { float H[]; };
layout(std430, set = 0, binding = 1) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 2) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 3) readonly buffer Xi { float xi[]; };

float noise_at(uint idx)
{
    if (pc.noise_mode == 1u) return hebbian_philox_noise(pc.sigma, pc.seed, pc.stream, idx);
    if (pc.noise_mode == 2u) return xi[idx];
    return 0.0;
}

// The unclipped new trace at flat index idx of H.
float trace_pre(uint idx)
{
    uint nh = pc.N * pc.h;
    uint b = pc.per_sample != 0u ? idx / nh : 0u;
    uint nj = idx - b * nh;
    uint n = nj / pc.h, j = nj - n * pc.h;
    precise float d;
    if (pc.per_sample != 0u) {
        d = a[b * pc.N + n] * z[b * pc.h + j];
    } else {
        d = 0.0;
        for (uint k = 0u; k < pc.B; k++) d += a[k * pc.N + n] * z[k * pc.h + j];
        d = d * pc.inv_batch;
    }
    return hebbian_pre(pc.decay, pc.eta, H[idx], d, noise_at(idx));
}
#endif

#if !defined(BACKWARD_TRACE) && !defined(BACKWARD_INPUTS)
layout(std430, set = 0, binding = 4) writeonly buffer HNew { float H_new[]; };

void main()
{
    uint idx = flat_index();
    uint count = pc.per_sample != 0u ? pc.B * pc.N * pc.h : pc.N * pc.h;
    if (idx >= count) return;
    H_new[idx] = clamp(trace_pre(idx), -pc.clip, pc.clip);
}
#endif

#ifdef BACKWARD_TRACE
layout(std430, set = 0, binding = 4) readonly buffer DHNew { float dH_new[]; };
layout(std430, set = 0, binding = 5) buffer DHPrev { float dH_prev[]; };
layout(std430, set = 0, binding = 6) writeonly buffer G { float G_out[]; };

void main()
{
    uint idx = flat_index();
    uint count = pc.per_sample != 0u ? pc.B * pc.N * pc.h : pc.N * pc.h;
    if (idx >= count) return;
    float pre = trace_pre(idx);
    float g = (pre >= -pc.clip && pre <= pc.clip) ? dH_new[idx] : 0.0;
    float v = pc.decay * g;
    dH_prev[idx] = pc.beta_dH != 0.0 ? v + pc.beta_dH * dH_prev[idx] : v;
    G_out[idx] = pc.g_scale * g;
}
#endif

#ifdef BACKWARD_INPUTS
layout(std430, set = 0, binding = 0) readonly buffer G { float G_in[]; };
layout(std430, set = 0, binding = 1) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 2) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 3) buffer DA { float da[]; };
layout(std430, set = 0, binding = 4) buffer DZ { float dz[]; };

// One invocation per element of da [B,N] (the first B*N indices) or dz [B,h] (the rest).
void main()
{
    uint idx = flat_index();
    uint N = pc.N, h = pc.h, nda = pc.B * N;
    if (idx >= nda + pc.B * h) return;
    if (idx < nda) {
        uint b = idx / N, n = idx - b * N;
        uint go = (pc.per_sample != 0u ? b * N * h : 0u) + n * h;
        float acc = 0.0;
        for (uint j = 0u; j < h; j++) acc += G_in[go + j] * z[b * h + j];
        da[idx] = pc.beta_da != 0.0 ? acc + pc.beta_da * da[idx] : acc;
    } else {
        uint i = idx - nda;
        uint b = i / h, j = i - b * h;
        uint go = pc.per_sample != 0u ? b * N * h : 0u;
        float acc = 0.0;
        for (uint n = 0u; n < N; n++) acc += G_in[go + n * h + j] * a[b * N + n];
        dz[i] = pc.beta_dz != 0.0 ? acc + pc.beta_dz * dz[i] : acc;
    }
}
#endif
