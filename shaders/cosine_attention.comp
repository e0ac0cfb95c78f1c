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
// The backward kernels take ROWS batch rows (resp. memory slots) per workgroup and load
// VW-wide vectors (vec4 when h % 4 == 0); per-row sums live in registers and the softmax
// gradient of a row is a serial loop of one invocation (no shared-memory tree
// reductions: lavapipe turns every shared or buffer access into a per-lane loop).
// The launcher picks ROWS = 8 on CPU devices, 1 on GPUs (more workgroups).
//
//! variant cosine_attention_backward -DBACKWARD=1
//! variant cosine_attention_backward_v4 -DBACKWARD=1 -DVW=4
//! variant cosine_attention_backward_r8 -DBACKWARD=1 -DROWS=8
//! variant cosine_attention_backward_v4r8 -DBACKWARD=1 -DVW=4 -DROWS=8
//! variant cosine_attention_backward_memory -DBACKWARD_MEMORY=1
//! variant cosine_attention_backward_memory_v4 -DBACKWARD_MEMORY=1 -DVW=4
//! variant cosine_attention_backward_memory_r8 -DBACKWARD_MEMORY=1 -DROWS=8
//! variant cosine_attention_backward_memory_v4r8 -DBACKWARD_MEMORY=1 -DVW=4 -DROWS=8
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

#ifndef VW
#define VW 1
#endif
#ifndef ROWS
#define ROWS 1
#endif
#if VW == 4
#define VT vec4
#else
#define VT float
#endif

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
layout(std430, set = 0, binding = 0) readonly buffer Z { VT z[]; };
layout(std430, set = 0, binding = 1) readonly buffer Em { VT E[]; };
layout(std430, set = 0, binding = 2) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 3) readonly buffer DM { VT dm[]; };
layout(std430, set = 0, binding = 4) readonly buffer DA { float da_in[]; };
layout(std430, set = 0, binding = 5) buffer DZ { VT dz[]; };
// Workspace: ds [B,N], then q = ds * s [B,N], then the signed 1/|z| [B] (negative when
// the norm was clamped), for the shared-mode memory gradient.
layout(std430, set = 0, binding = 6) writeonly buffer WS { float ws[]; };
layout(std430, set = 0, binding = 7) buffer DE { VT dE[]; };   // per-sample mode only

// Per row r of the tile and slot n, at [r * MAX_N + n]:
shared float sh_s[ROWS * MAX_N];    // s_n
shared float sh_r[ROWS * MAX_N];    // 1/|E_n|, negative when clamped
shared float sh_d[ROWS * MAX_N];    // da_n, then ds_n
shared float sh_rz[ROWS];           // 1/|z|, negative when clamped
shared float sh_Q[ROWS];

void keep_slot(uint r, uint n, float dot_ze, float dme, float ee)
{
    float rE = inversesqrt(max(ee, EPS_SQ));
    sh_s[r * MAX_N + n] = dot_ze * abs(sh_rz[r]) * rE;
    sh_r[r * MAX_N + n] = ee < EPS_SQ ? -rE : rE;
    sh_d[r * MAX_N + n] = dme;
}

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, h = pc.h, B = pc.B, hv = h / VW;
    bool per_sample = pc.e_stride != 0u;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint rows = min(uint(ROWS), B - b0);
        for (uint r = t; r < rows; r += WG) {
            float zss = 0.0;
            for (uint j = 0u; j < hv; j++) {
                VT v = z[(b0 + r) * hv + j];
                zss += dot(v, v);
            }
            float rz = inversesqrt(max(zss, EPS_SQ));
            sh_rz[r] = zss < EPS_SQ ? -rz : rz;
        }
        barrier();
        // Similarities and dm . E_n: one invocation per slot.
        for (uint n = t; n < N; n += WG) {
            if (per_sample) {
                for (uint r = 0u; r < rows; r++) {
                    uint b = b0 + r, eo = b * N * hv + n * hv;
                    float dot_ze = 0.0, ee = 0.0, dme = 0.0;
                    for (uint j = 0u; j < hv; j++) {
                        VT e = E[eo + j];
                        dot_ze += dot(z[b * hv + j], e);
                        ee += dot(e, e);
                        dme += dot(dm[b * hv + j], e);
                    }
                    keep_slot(r, n, dot_ze, dme, ee);
                }
            } else {
                float dot_ze[ROWS], dme[ROWS], ee = 0.0;
                for (uint r = 0u; r < ROWS; r++) dot_ze[r] = dme[r] = 0.0;
                for (uint j = 0u; j < hv; j++) {
                    VT e = E[n * hv + j];
                    ee += dot(e, e);
                    for (uint r = 0u; r < ROWS; r++) {
                        if (r < rows) {
                            dot_ze[r] += dot(z[(b0 + r) * hv + j], e);
                            dme[r] += dot(dm[(b0 + r) * hv + j], e);
                        }
                    }
                }
                for (uint r = 0u; r < ROWS; r++)
                    if (r < rows) keep_slot(r, n, dot_ze[r], dme[r], ee);
            }
        }
        barrier();
        // The softmax gradient, one invocation per row.
        for (uint r = t; r < rows; r += WG) {
            uint b = b0 + r;
            float c = 0.0;
            for (uint n = 0u; n < N; n++) {
                float da = sh_d[r * MAX_N + n] + (pc.has_da != 0u ? da_in[b * N + n] : 0.0);
                sh_d[r * MAX_N + n] = da;
                c += a[b * N + n] * da;
            }
            float Q = 0.0;
            for (uint n = 0u; n < N; n++) {
                float ds = a[b * N + n] * (sh_d[r * MAX_N + n] - c) * pc.inv_tau;
                sh_d[r * MAX_N + n] = ds;
                float q = ds * sh_s[r * MAX_N + n];
                Q += q;
                ws[b * N + n] = ds;
                ws[B * N + b * N + n] = q;
            }
            sh_Q[r] = Q;
            ws[2u * B * N + b] = sh_rz[r];
        }
        barrier();
        // dz (and per-sample dE): one invocation per vector of h.
        for (uint j = t; j < hv; j += WG) {
            if (per_sample) {
                for (uint r = 0u; r < rows; r++) {
                    uint b = b0 + r, eo = b * N * hv;
                    float rz = abs(sh_rz[r]);
                    VT zn = z[b * hv + j] * rz, dmj = dm[b * hv + j], g = VT(0.0);
                    for (uint n = 0u; n < N; n++) {
                        float ds = sh_d[r * MAX_N + n], rEs = sh_r[r * MAX_N + n], rE = abs(rEs);
                        VT e = E[eo + n * hv + j];
                        g += ds * rE * e;
                        VT proj = rEs < 0.0 ? VT(0.0) : e * rE * sh_s[r * MAX_N + n];
                        VT v = a[b * N + n] * dmj + ds * (zn - proj) * rE;
                        uint k = eo + n * hv + j;
                        dE[k] = pc.beta_dE != 0.0 ? v + pc.beta_dE * dE[k] : v;
                    }
                    VT v = (g - (sh_rz[r] < 0.0 ? VT(0.0) : zn * sh_Q[r])) * rz;
                    dz[b * hv + j] = pc.beta_dz != 0.0 ? v + pc.beta_dz * dz[b * hv + j] : v;
                }
            } else {
                VT g[ROWS];
                for (uint r = 0u; r < ROWS; r++) g[r] = VT(0.0);
                for (uint n = 0u; n < N; n++) {
                    VT e = E[n * hv + j];
                    for (uint r = 0u; r < ROWS; r++)
                        if (r < rows) g[r] += sh_d[r * MAX_N + n] * abs(sh_r[r * MAX_N + n]) * e;
                }
                for (uint r = 0u; r < ROWS; r++) {
                    if (r < rows) {
                        uint b = b0 + r;
                        float rz = abs(sh_rz[r]);
                        VT zn = z[b * hv + j] * rz;
                        VT v = (g[r] - (sh_rz[r] < 0.0 ? VT(0.0) : zn * sh_Q[r])) * rz;
                        dz[b * hv + j] = pc.beta_dz != 0.0 ? v + pc.beta_dz * dz[b * hv + j] : v;
                    }
                }
            }
        }
        barrier();
    }
}
#endif

#ifdef BACKWARD_MEMORY
layout(std430, set = 0, binding = 0) readonly buffer Z { VT z[]; };
layout(std430, set = 0, binding = 1) readonly buffer Em { VT E[]; };
layout(std430, set = 0, binding = 2) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 3) readonly buffer DM { VT dm[]; };
layout(std430, set = 0, binding = 4) readonly buffer WS { float ws[]; };
layout(std430, set = 0, binding = 5) buffer DE { VT dE[]; };

shared float sh_rE[ROWS];   // 1/|E_n| of the tile's slots, negative when clamped
shared float sh_Q[ROWS];    // sum_b q_bn

// ROWS memory slots per workgroup, one invocation per vector of h, the batch summed in
// order in registers (deterministic, no atomics).
void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, h = pc.h, B = pc.B, hv = h / VW;
    for (uint n0 = gl_WorkGroupID.x * ROWS; n0 < N; n0 += gl_NumWorkGroups.x * ROWS) {
        uint slots = min(uint(ROWS), N - n0);
        for (uint k = t; k < slots; k += WG) {
            uint n = n0 + k;
            float ee = 0.0, Q = 0.0;
            for (uint j = 0u; j < hv; j++) ee += dot(E[n * hv + j], E[n * hv + j]);
            for (uint b = 0u; b < B; b++) Q += ws[B * N + b * N + n];
            float rE = inversesqrt(max(ee, EPS_SQ));
            sh_rE[k] = ee < EPS_SQ ? -rE : rE;
            sh_Q[k] = Q;
        }
        barrier();
        for (uint j = t; j < hv; j += WG) {
            VT ret[ROWS], g[ROWS];
            for (uint k = 0u; k < ROWS; k++) ret[k] = g[k] = VT(0.0);
            for (uint b = 0u; b < B; b++) {
                VT dmj = dm[b * hv + j], zj = z[b * hv + j] * abs(ws[2u * B * N + b]);
                for (uint k = 0u; k < ROWS; k++) {
                    if (k < slots) {
                        ret[k] += a[b * N + n0 + k] * dmj;
                        g[k] += ws[b * N + n0 + k] * zj;
                    }
                }
            }
            for (uint k = 0u; k < ROWS; k++) {
                if (k < slots) {
                    uint n = n0 + k;
                    float rE = abs(sh_rE[k]);
                    VT e = E[n * hv + j];
                    VT v = ret[k] + (g[k] - (sh_rE[k] < 0.0 ? VT(0.0) : e * rE * sh_Q[k])) * rE;
                    dE[n * hv + j] = pc.beta_dE != 0.0 ? v + pc.beta_dE * dE[n * hv + j] : v;
                }
            }
        }
        barrier();
    }
}
#endif
