#version 450
#extension GL_GOOGLE_include_directive : require
// One step of the ENN's memory path fused into one workgroup per batch row (the
// forward-pass fast path; DESIGN.md: one dispatch per step instead of several):
//   E = M + alpha H_b          (read on the fly, never stored)
//   a = softmax_n(cos(z_b, E_n) / tau_e),  m = a E                (as cosine_attention)
//   per-sample trace only: H_new_b = clip(pre, -c, c), pre = (1 - eta) H_b + eta (a z_b^T + xi)
// In shared-trace mode the update needs every row's a (the batch mean), so the launcher
// follows this kernel with hebbian_trace. The update's arithmetic is hebbian_common.glsl,
// so hebbian_trace_backward_trace recomputes exactly this kernel's clip mask.
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint MAX_N = 64;
#include "reduce.glsl"
#include "philox.glsl"
#include "hebbian_common.glsl"

#define EPS_SQ 1e-12

layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) readonly buffer Mm { float M[]; };
layout(std430, set = 0, binding = 2) readonly buffer Hm { float H[]; };
layout(std430, set = 0, binding = 3) readonly buffer Xi { float xi[]; };
layout(std430, set = 0, binding = 4) writeonly buffer A { float a[]; };
layout(std430, set = 0, binding = 5) writeonly buffer Mo { float m[]; };
layout(std430, set = 0, binding = 6) writeonly buffer HNew { float H_new[]; };

layout(push_constant) uniform Push {
    uint B, N, h;
    uint per_sample;
    uvec2 seed;
    uvec2 stream;
    uint noise_mode;   // 0 none, 1 Philox, 2 buffer
    float inv_tau;
    float alpha;
    float decay;
    float eta;
    float sigma;
    float clip;
} pc;

const uint WG = gl_WorkGroupSize.x;
shared float sh_a[MAX_N];

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, h = pc.h;
    bool per_sample = pc.per_sample != 0u;
    for (uint b = gl_WorkGroupID.x; b < pc.B; b += gl_NumWorkGroups.x) {
        uint zo = b * h, ho = per_sample ? b * N * h : 0u;
        float p = 0.0;
        for (uint j = t; j < h; j += WG) p += z[zo + j] * z[zo + j];
        float rz = inversesqrt(max(workgroup_sum(p), EPS_SQ));
        float local_max = -3.4e38;
        for (uint n = t; n < N; n += WG) {
            float dot_ze = 0.0, ee = 0.0;
            for (uint j = 0u; j < h; j++) {
                float e = M[n * h + j] + pc.alpha * H[ho + n * h + j];
                dot_ze += z[zo + j] * e;
                ee += e * e;
            }
            float logit = dot_ze * rz * inversesqrt(max(ee, EPS_SQ)) * pc.inv_tau;
            sh_a[n] = logit;
            local_max = max(local_max, logit);
        }
        float mx = workgroup_max(local_max);
        float se = 0.0;
        for (uint n = t; n < N; n += WG) {
            float e = exp(sh_a[n] - mx);
            sh_a[n] = e;
            se += e;
        }
        float inv_sum = 1.0 / workgroup_sum(se);
        for (uint n = t; n < N; n += WG) {
            float an = sh_a[n] * inv_sum;
            sh_a[n] = an;
            a[b * N + n] = an;
        }
        barrier();
        for (uint j = t; j < h; j += WG) {
            float acc = 0.0;
            for (uint n = 0u; n < N; n++) acc += sh_a[n] * (M[n * h + j] + pc.alpha * H[ho + n * h + j]);
            m[zo + j] = acc;
        }
        if (per_sample) {
            for (uint i = t; i < N * h; i += WG) {
                uint n = i / h, j = i - n * h;
                precise float d = sh_a[n] * z[zo + j];
                float noise = pc.noise_mode == 1u ? hebbian_philox_noise(pc.sigma, pc.seed, pc.stream, ho + i)
                            : pc.noise_mode == 2u ? xi[ho + i] : 0.0;
                H_new[ho + i] = clamp(hebbian_pre(pc.decay, pc.eta, H[ho + i], d, noise), -pc.clip, pc.clip);
            }
        }
        barrier();
    }
}
