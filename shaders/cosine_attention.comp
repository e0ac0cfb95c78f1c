#version 450
#extension GL_GOOGLE_include_directive : require
// Cosine attention over the memory slots and retrieval (ENN-SPEC, one time step):
//   zn = z / sqrt(max(|z|^2, 1e-12))   En = E / sqrt(max(|E_n|^2, 1e-12))   (row-wise)
//   a  = softmax_n(zn . En_n / tau_e)    [B,N]
//   m  = a E                             [B,h]
// E is [N,h] shared by the batch, or [B,N,h] per sample (e_stride = N*h, else 0).
//
// Three kernels (variants):
//   cosine_attention           forward, one workgroup per batch row
//   cosine_attention_backward  per batch row: dz, the softmax/similarity gradients ds, and
//                              in per-sample mode dE directly
//   cosine_attention_backward_memory  shared mode: dE, one workgroup per memory slot,
//                              summing over the batch from ds (no atomics: deterministic)
// Backward math (r = 1/norm, s_n = zn . En_n, Q = sum_n ds_n s_n):
//   da_n  = da_in_n + dm . E_n
//   ds_n  = a_n (da_n - sum_k a_k da_k) / tau_e
//   dz    = r_z (sum_n ds_n r_n E_n - zn Q)        (drop the zn Q term if |z|^2 < 1e-12)
//   dE_n  = sum_b [a_bn dm_b + r_n (ds_bn zn_b - En_n ds_bn s_bn)]   (same clamp rule)
//
//! variant cosine_attention_backward -DBACKWARD=1
//! variant cosine_attention_backward_memory -DBACKWARD_MEMORY=1
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint MAX_N = 64;    // shared arrays hold N <= MAX_N slots
#include "reduce.glsl"

#define EPS_SQ 1e-12

layout(push_constant) uniform Push {
    uint B, N, h;
    uint e_stride;     // elements between batch rows of E: 0 (shared) or N*h (per sample)
    float inv_tau;
    uint has_da;       // backward: da_in is bound and added
    float beta_dz;     // backward: dz = new + beta_dz * dz (0 or 1)
    float beta_dE;
} pc;

const uint WG = gl_WorkGroupSize.x;

#if !defined(BACKWARD) && !defined(BACKWARD_MEMORY)
layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) readonly buffer Em { float E[]; };
layout(std430, set = 0, binding = 2) writeonly buffer A { float a[]; };
layout(std430, set = 0, binding = 3) writeonly buffer M { float m[]; };

shared float sh_a[MAX_N];

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, h = pc.h;
    for (uint b = gl_WorkGroupID.x; b < pc.B; b += gl_NumWorkGroups.x) {
        uint zo = b * h, eo = b * pc.e_stride;
        float p = 0.0;
        for (uint j = t; j < h; j += WG) p += z[zo + j] * z[zo + j];
        float rz = inversesqrt(max(workgroup_sum(p), EPS_SQ));
        // One invocation per slot: dot products need no reduction across invocations.
        float local_max = -3.4e38;
        for (uint n = t; n < N; n += WG) {
            float dot_ze = 0.0, ee = 0.0;
            for (uint j = 0u; j < h; j++) {
                float e = E[eo + n * h + j];
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
            for (uint n = 0u; n < N; n++) acc += sh_a[n] * E[eo + n * h + j];
            m[zo + j] = acc;
        }
        barrier();
    }
}
#endif

#ifdef BACKWARD
layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) readonly buffer Em { float E[]; };
layout(std430, set = 0, binding = 2) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 3) readonly buffer DM { float dm[]; };
layout(std430, set = 0, binding = 4) readonly buffer DA { float da_in[]; };
layout(std430, set = 0, binding = 5) buffer DZ { float dz[]; };
// Workspace: ds [B,N], then q = ds * s [B,N], then the signed 1/|z| [B] (negative when
// the norm was clamped), for the shared-mode memory gradient.
layout(std430, set = 0, binding = 6) writeonly buffer WS { float ws[]; };
layout(std430, set = 0, binding = 7) buffer DE { float dE[]; };   // per-sample mode only

shared float sh_s[MAX_N];    // s_n
shared float sh_r[MAX_N];    // 1/|E_n|, negative when clamped
shared float sh_d[MAX_N];    // da_n, then ds_n

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, h = pc.h, B = pc.B;
    bool per_sample = pc.e_stride != 0u;
    for (uint b = gl_WorkGroupID.x; b < B; b += gl_NumWorkGroups.x) {
        uint zo = b * h, eo = b * pc.e_stride;
        float p = 0.0;
        for (uint j = t; j < h; j += WG) p += z[zo + j] * z[zo + j];
        float zss = workgroup_sum(p);
        bool z_clamped = zss < EPS_SQ;
        float rz = inversesqrt(max(zss, EPS_SQ));
        float c_part = 0.0;
        for (uint n = t; n < N; n += WG) {
            float dot_ze = 0.0, ee = 0.0, dme = 0.0;
            for (uint j = 0u; j < h; j++) {
                float e = E[eo + n * h + j];
                dot_ze += z[zo + j] * e;
                ee += e * e;
                dme += dm[zo + j] * e;
            }
            float rE = inversesqrt(max(ee, EPS_SQ));
            sh_s[n] = dot_ze * rz * rE;
            sh_r[n] = ee < EPS_SQ ? -rE : rE;
            float da = dme + (pc.has_da != 0u ? da_in[b * N + n] : 0.0);
            sh_d[n] = da;
            c_part += a[b * N + n] * da;
        }
        float c = workgroup_sum(c_part);
        float q_part = 0.0;
        for (uint n = t; n < N; n += WG) {
            float ds = a[b * N + n] * (sh_d[n] - c) * pc.inv_tau;
            sh_d[n] = ds;
            float q = ds * sh_s[n];
            q_part += q;
            ws[b * N + n] = ds;
            ws[B * N + b * N + n] = q;
        }
        float Q = workgroup_sum(q_part);
        if (t == 0u) ws[2u * B * N + b] = z_clamped ? -rz : rz;
        for (uint j = t; j < h; j += WG) {
            float g = 0.0;
            for (uint n = 0u; n < N; n++) g += sh_d[n] * abs(sh_r[n]) * E[eo + n * h + j];
            float zn = z[zo + j] * rz;
            float v = (g - (z_clamped ? 0.0 : zn * Q)) * rz;
            dz[zo + j] = pc.beta_dz != 0.0 ? v + pc.beta_dz * dz[zo + j] : v;
        }
        if (per_sample) {
            for (uint i = t; i < N * h; i += WG) {
                uint n = i / h, j = i - n * h;
                float rE = abs(sh_r[n]);
                float zn = z[zo + j] * rz;
                float proj = sh_r[n] < 0.0 ? 0.0 : E[eo + i] * rE * sh_s[n];
                float v = a[b * N + n] * dm[zo + j] + sh_d[n] * (zn - proj) * rE;
                dE[eo + i] = pc.beta_dE != 0.0 ? v + pc.beta_dE * dE[eo + i] : v;
            }
        }
        barrier();
    }
}
#endif

#ifdef BACKWARD_MEMORY
layout(std430, set = 0, binding = 0) readonly buffer Z { float z[]; };
layout(std430, set = 0, binding = 1) readonly buffer Em { float E[]; };
layout(std430, set = 0, binding = 2) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 3) readonly buffer DM { float dm[]; };
layout(std430, set = 0, binding = 4) readonly buffer WS { float ws[]; };
layout(std430, set = 0, binding = 5) buffer DE { float dE[]; };

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, h = pc.h, B = pc.B;
    for (uint n = gl_WorkGroupID.x; n < N; n += gl_NumWorkGroups.x) {
        float p = 0.0, q = 0.0;
        for (uint j = t; j < h; j += WG) p += E[n * h + j] * E[n * h + j];
        for (uint b = t; b < B; b += WG) q += ws[B * N + b * N + n];
        float ee = workgroup_sum(p);
        float Q = workgroup_sum(q);
        float rE = inversesqrt(max(ee, EPS_SQ));
        bool clamped = ee < EPS_SQ;
        for (uint j = t; j < h; j += WG) {
            float ret = 0.0, g = 0.0;
            for (uint b = 0u; b < B; b++) {
                ret += a[b * N + n] * dm[b * h + j];
                g += ws[b * N + n] * z[b * h + j] * abs(ws[2u * B * N + b]);
            }
            float v = ret + (g - (clamped ? 0.0 : E[n * h + j] * rE * Q)) * rE;
            dE[n * h + j] = pc.beta_dE != 0.0 ? v + pc.beta_dE * dE[n * h + j] : v;
        }
    }
}
#endif
