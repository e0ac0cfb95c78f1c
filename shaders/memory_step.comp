#version 450
#extension GL_GOOGLE_include_directive : require
// One step of the ENN's memory path fused into one dispatch (the forward-pass fast path;
// DESIGN.md: one dispatch per step instead of several). A workgroup takes ROWS batch rows:
//   E = M + alpha H_b          (read on the fly, never stored)
//   a = softmax_n(cos(z_b, E_n) / tau_e),  m = a E                (as cosine_attention)
//   per-sample trace only: H_new_b = clip(pre, -c, c), pre = (1 - eta) H_b + eta (a z_b^T + xi)
// In shared-trace mode the update needs every row's a (the batch mean), so the launcher
// follows this kernel with hebbian_trace. The update's arithmetic is hebbian_common.glsl,
// so hebbian_trace_backward_trace recomputes exactly this kernel's clip mask.
//
// Speed (lavapipe runs a workgroup as SIMD lanes of one CPU thread and turns every
// buffer access into a per-lane loop): loads are VW-wide (vec4 when h % 4 == 0), the
// per-row sums live in registers, a shared-trace workgroup reuses each loaded E vector
// for ROWS rows, and the softmax of a row is a serial loop of one invocation instead of
// shared-memory tree reductions. memory_step_wide, for GPUs: one row per workgroup of WG
// threads, every serial loop cut into parts (SJ threads per slot over h, PN threads per
// vector over the slots, tree reductions for the norms and the softmax).
//
//! variant memory_step_v4 -DVW=4
//! variant memory_step_r8 -DROWS=8
//! variant memory_step_v4r8 -DVW=4 -DROWS=8
//! variant memory_step_tv4r8 -DVW=4 -DROWS=8 -DTEXEL_IN=1 -DSB=8 -DJB=4
//! variant memory_step_tv4r8_nb -DVW=4 -DROWS=8 -DTEXEL_IN=1 -DSB=8 -DJB=4 -DNOISE_BLOCKS=1
//! variant memory_step_tv4r8_nb_w64 -DVW=4 -DROWS=8 -DTEXEL_IN=1 -DSB=8 -DJB=4 -DNOISE_BLOCKS=1 -DSTORE_WORDS64=1
//! variant memory_step_wide -DWIDE=1
//! variant memory_step_wide_v4 -DWIDE=1 -DVW=4
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint MAX_N = 64;
// The noise mode compiled in (0 none, 1 Philox, 2 buffer; CPU devices, where llvmpipe
// runs both modes' code for every element otherwise), or 3: the push constant's.
layout(constant_id = 6) const uint NOISE_SPEC = 3u;
#include "philox.glsl"
#include "hebbian_common.glsl"

#ifndef VW
#define VW 1
#endif
#ifndef ROWS
#define ROWS 1
#endif
// Shared trace, CPU devices: an invocation takes SB slots in the logits and JB vectors of
// h in the retrieval at once, so each loaded vector of z (logits) or each row's weight
// a (retrieval) serves SB or JB of them; on lavapipe every load costs a loop over the
// SIMD lanes and the arithmetic is almost free.
#ifndef SB
#define SB 1
#endif
#ifndef JB
#define JB 1
#endif
// The per-sample trace's logits: slots per invocation (each also loads its own H rows).
#if SB > 1
#define SBP 4
#else
#define SBP 1
#endif
#if VW == 4
#define VT vec4
#else
#define VT float
#endif

#define EPS_SQ 1e-12

#ifdef TEXEL_IN
// CPU devices (VW = 4): z, M and H as uniform texel buffers of vec4s, which llvmpipe
// gathers instead of looping over the lanes with a bounds check each.
layout(set = 0, binding = 0) uniform samplerBuffer tex_z;
layout(set = 0, binding = 1) uniform samplerBuffer tex_M;
layout(set = 0, binding = 2) uniform samplerBuffer tex_H;
#define LD_Z(i) texelFetch(tex_z, int(i))
#define LD_M(i) texelFetch(tex_M, int(i))
#define LD_H(i) texelFetch(tex_H, int(i))
#else
layout(std430, set = 0, binding = 0) readonly buffer Z { VT z[]; };
layout(std430, set = 0, binding = 1) readonly buffer Mm { VT M[]; };
layout(std430, set = 0, binding = 2) readonly buffer Hm { VT H[]; };
#define LD_Z(i) z[i]
#define LD_M(i) M[i]
#define LD_H(i) H[i]
#endif
layout(std430, set = 0, binding = 3) readonly buffer Xi { VT xi[]; };
layout(std430, set = 0, binding = 4) writeonly buffer A { float a[]; };
layout(std430, set = 0, binding = 5) writeonly buffer Mo { VT m[]; };
#ifdef STORE_WORDS64
// H_new's vec4s stored as two 64-bit words (CPU devices with shaderInt64): llvmpipe stores
// a vector one lane and one component at a time, so half the components is half the loop.
#extension GL_ARB_gpu_shader_int64 : require
layout(std430, set = 0, binding = 6) writeonly buffer HNew { u64vec2 H_new_words[]; };
#define STORE_H_NEW(k, v) \
    H_new_words[k] = u64vec2(packUint2x32(floatBitsToUint((v).xy)), packUint2x32(floatBitsToUint((v).zw)))
#else
layout(std430, set = 0, binding = 6) writeonly buffer HNew { VT H_new[]; };
#define STORE_H_NEW(k, v) H_new[k] = (v)
#endif

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
shared float sh_a[ROWS * MAX_N];   // logits, then attention weights, of the tile's rows
shared float sh_rz[ROWS];          // 1/|z_b|

// Noise of the VW elements of H starting at flat element idx.
VT noise_at(uint idx)
{
    uint mode = NOISE_SPEC < 3u ? NOISE_SPEC : pc.noise_mode;
#if VW == 4
    if (mode == 1u) return hebbian_philox_noise4(pc.sigma, pc.seed, pc.stream, idx);
#else
    if (mode == 1u) return hebbian_philox_noise(pc.sigma, pc.seed, pc.stream, idx);
#endif
    if (mode == 2u) return xi[idx / VW];
    return VT(0.0);
}

#ifdef NOISE_BLOCKS
// The noise of the JB = 4 vectors at flat vector indices k of H (column q: k[q]), the four
// Philox blocks computed at once (philox.glsl: philox_normal4_x4; the same values as
// noise_at, faster on CPU devices).
mat4 noise_at_x4(uvec4 k)
{
    uint mode = NOISE_SPEC < 3u ? NOISE_SPEC : pc.noise_mode;
    if (mode == 1u) return hebbian_philox_noise4_x4(pc.sigma, pc.seed, pc.stream, k);
    if (mode == 2u) return mat4(xi[k.x], xi[k.y], xi[k.z], xi[k.w]);
    return mat4(0.0);
}
#endif

#ifndef WIDE
void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, h = pc.h, hv = h / VW;   // hv: vectors per row
    bool per_sample = pc.per_sample != 0u;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < pc.B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint rows = min(uint(ROWS), pc.B - b0);
        // 1/|z_b|, one invocation per row.
        for (uint r = t; r < rows; r += WG) {
            float p = 0.0;
            for (uint j = 0u; j < hv; j++) {
                VT v = LD_Z((b0 + r) * hv + j);
                p += dot(v, v);
            }
            sh_rz[r] = inversesqrt(max(p, EPS_SQ));
        }
        barrier();
        // Logits: one invocation per slot (per-sample) or per SB slots (shared), dot
        // products over h in registers.
        for (uint n0 = t; n0 < N && per_sample; n0 += WG * SBP) {
            // SBP slots per invocation: each row's z vector loads once for all of them, each
            // vector of M once for the tile's rows. Slots past N and rows past the batch
            // repeat the last one (no branches around the loads) and are not kept.
            float dot_ze[ROWS][SBP], ee[ROWS][SBP];
            for (uint r = 0u; r < ROWS; r++)
                for (uint q = 0u; q < SBP; q++) dot_ze[r][q] = ee[r][q] = 0.0;
            for (uint j = 0u; j < hv; j++) {
                VT zr[ROWS];
                for (uint r = 0u; r < ROWS; r++) zr[r] = LD_Z(min(b0 + r, pc.B - 1u) * hv + j);
                for (uint q = 0u; q < SBP; q++) {
                    uint n = min(n0 + q * WG, N - 1u);
                    VT mv = LD_M(n * hv + j);
                    for (uint r = 0u; r < ROWS; r++) {
                        uint b = min(b0 + r, pc.B - 1u);
                        VT e = mv + pc.alpha * LD_H(b * N * hv + n * hv + j);
                        dot_ze[r][q] += dot(zr[r], e);
                        ee[r][q] += dot(e, e);
                    }
                }
            }
            for (uint q = 0u; q < SBP; q++) {
                uint n = n0 + q * WG;
                for (uint r = 0u; r < ROWS; r++)
                    if (r < rows && n < N)
                        sh_a[r * MAX_N + n] = dot_ze[r][q] * sh_rz[r] * inversesqrt(max(ee[r][q], EPS_SQ)) * pc.inv_tau;
            }
        }
        for (uint n0 = t; n0 < N && !per_sample; n0 += WG * SB) {
            // Slots past N repeat the last one and rows past the batch the last row (no
            // branches around the loads); neither is kept.
            float dot_ze[ROWS][SB], ee[SB];
            for (uint q = 0u; q < SB; q++) {
                ee[q] = 0.0;
                for (uint r = 0u; r < ROWS; r++) dot_ze[r][q] = 0.0;
            }
            for (uint j = 0u; j < hv; j++) {
                VT e[SB];
                for (uint q = 0u; q < SB; q++) {
                    uint n = min(n0 + q * WG, N - 1u);
                    e[q] = LD_M(n * hv + j) + pc.alpha * LD_H(n * hv + j);
                    ee[q] += dot(e[q], e[q]);
                }
                for (uint r = 0u; r < ROWS; r++) {
                    VT zr = LD_Z(min(b0 + r, pc.B - 1u) * hv + j);
                    for (uint q = 0u; q < SB; q++) dot_ze[r][q] += dot(zr, e[q]);
                }
            }
            for (uint q = 0u; q < SB; q++) {
                uint n = n0 + q * WG;
                float re = inversesqrt(max(ee[q], EPS_SQ)) * pc.inv_tau;
                for (uint r = 0u; r < ROWS; r++)
                    if (r < rows && n < N) sh_a[r * MAX_N + n] = dot_ze[r][q] * sh_rz[r] * re;
            }
        }
        barrier();
        // Softmax over the slots, one invocation per row.
        for (uint r = t; r < rows; r += WG) {
            float mx = -3.4e38;
            for (uint n = 0u; n < N; n++) mx = max(mx, sh_a[r * MAX_N + n]);
            float se = 0.0;
            for (uint n = 0u; n < N; n++) {
                float e = exp(sh_a[r * MAX_N + n] - mx);
                sh_a[r * MAX_N + n] = e;
                se += e;
            }
            float inv_sum = 1.0 / se;
            for (uint n = 0u; n < N; n++) {
                float an = sh_a[r * MAX_N + n] * inv_sum;
                sh_a[r * MAX_N + n] = an;
                a[(b0 + r) * N + n] = an;
            }
        }
        barrier();
        // Retrieval m = a E, one invocation per vector of h; per-sample: the trace update
        // in the same pass over H.
        for (uint j0 = t; j0 < hv && per_sample; j0 += WG * JB) {
            // JB vectors per invocation, one row at a time (a row's z, sums and weights
            // stay in registers; all rows at once spilled), each loaded a[n] serving JB.
            for (uint r = 0u; r < rows; r++) {
                uint b = b0 + r;
                VT zj[JB], acc[JB];
                for (uint q = 0u; q < JB; q++) {
                    zj[q] = LD_Z(b * hv + min(j0 + q * WG, hv - 1u));
                    acc[q] = VT(0.0);
                }
                for (uint n = 0u; n < N; n++) {
                    float an = sh_a[r * MAX_N + n];
#ifdef NOISE_BLOCKS
                    uvec4 kq = b * N * hv + n * hv + min(j0 + uvec4(0u, 1u, 2u, 3u) * WG, uvec4(hv - 1u));
                    mat4 xi4 = noise_at_x4(kq);
#endif
                    for (uint q = 0u; q < JB; q++) {
                        // Vectors past the row repeat its last one (the same value written
                        // twice) instead of a branch, which llvmpipe runs under lane masks.
                        uint j = min(j0 + q * WG, hv - 1u);
                        uint k = b * N * hv + n * hv + j;
                        VT hold = LD_H(k);
                        acc[q] += an * (LD_M(n * hv + j) + pc.alpha * hold);
                        precise VT d = an * zj[q];
#ifdef NOISE_BLOCKS
                        VT pre = hebbian_pre(pc.decay, pc.eta, hold, d, xi4[q]);
#else
                        VT pre = hebbian_pre(pc.decay, pc.eta, hold, d, noise_at(k * VW));
#endif
                        STORE_H_NEW(k, clamp(pre, -pc.clip, pc.clip));
                    }
                }
                for (uint q = 0u; q < JB; q++)
                    if (j0 + q * WG < hv) m[b * hv + j0 + q * WG] = acc[q];
            }
        }
        for (uint j0 = t; j0 < hv && !per_sample; j0 += WG * JB) {
            VT acc[ROWS][JB];
            for (uint r = 0u; r < ROWS; r++)
                for (uint q = 0u; q < JB; q++) acc[r][q] = VT(0.0);
            for (uint n = 0u; n < N; n++) {
                float an[ROWS];
                for (uint r = 0u; r < ROWS; r++) an[r] = sh_a[r * MAX_N + n];
                for (uint q = 0u; q < JB; q++) {
                    uint j = min(j0 + q * WG, hv - 1u);
                    VT e = LD_M(n * hv + j) + pc.alpha * LD_H(n * hv + j);
                    for (uint r = 0u; r < ROWS; r++) acc[r][q] += an[r] * e;
                }
            }
            for (uint q = 0u; q < JB; q++) {
                uint j = j0 + q * WG;
                for (uint r = 0u; r < ROWS; r++)
                    if (r < rows && j < hv) m[(b0 + r) * hv + j] = acc[r][q];
            }
        }
        barrier();
    }
}
#endif

#ifdef WIDE
layout(constant_id = 4) const uint SJ = 4;    // threads per slot in the logits
layout(constant_id = 5) const uint JW = 32;   // threads per slot-part in the retrieval
const uint PN = WG / JW;
shared float sh_red[WG];
shared VT sh_m[WG];

// Sum (op 0) or maximum (op 1) of v over the workgroup; every invocation calls it.
float workgroup_reduce(float v, uint op)
{
    uint t = gl_LocalInvocationID.x;
    sh_red[t] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s) sh_red[t] = op == 0u ? sh_red[t] + sh_red[t + s] : max(sh_red[t], sh_red[t + s]);
        barrier();
    }
    float r = sh_red[0];
    barrier();
    return r;
}

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, hv = pc.h / VW;
    bool per_sample = pc.per_sample != 0u;
    for (uint b = gl_WorkGroupID.x; b < pc.B; b += gl_NumWorkGroups.x) {
        uint eo = per_sample ? b * N * hv : 0u;
        float zp = 0.0;
        for (uint j = t; j < hv; j += WG) {
            VT v = z[b * hv + j];
            zp += dot(v, v);
        }
        float rz = inversesqrt(max(workgroup_reduce(zp, 0u), EPS_SQ));
        // Logits: SJ threads per slot over the vectors of h.
        uint sub = t % SJ;
        for (uint n0 = 0u; n0 < N; n0 += WG / SJ) {
            uint n = n0 + t / SJ;
            vec2 acc = vec2(0.0);   // z . E_n, |E_n|^2
            if (n < N)
                for (uint j = sub; j < hv; j += SJ) {
                    VT e = M[n * hv + j] + pc.alpha * H[eo + n * hv + j];
                    acc += vec2(dot(z[b * hv + j], e), dot(e, e));
                }
            sh_m[t] = VT(acc.x);
            sh_red[t] = acc.y;
            barrier();
            if (sub == 0u && n < N) {
                for (uint q = 1u; q < SJ; q++) acc += vec2(float(sh_m[t + q]), sh_red[t + q]);
                sh_a[n] = acc.x * rz * inversesqrt(max(acc.y, EPS_SQ)) * pc.inv_tau;
            }
            barrier();
        }
        // Softmax over the slots.
        float mx = -3.4e38;
        for (uint n = t; n < N; n += WG) mx = max(mx, sh_a[n]);
        mx = workgroup_reduce(mx, 1u);
        float se = 0.0;
        for (uint n = t; n < N; n += WG) {
            float e = exp(sh_a[n] - mx);
            sh_a[n] = e;
            se += e;
        }
        float inv_sum = 1.0 / workgroup_reduce(se, 0u);
        for (uint n = t; n < N; n += WG) {
            float an = sh_a[n] * inv_sum;
            sh_a[n] = an;
            a[b * N + n] = an;
        }
        barrier();
        // Retrieval m = a E: PN threads per vector of h, each over every PN-th slot;
        // per-sample: the trace update of the same elements.
        uint jl = t % JW, part = t / JW;
        for (uint j0 = 0u; j0 < hv; j0 += JW) {
            uint j = j0 + jl;
            VT acc = VT(0.0);
            if (j < hv) {
                VT zj = z[b * hv + j];
                for (uint n = part; n < N; n += PN) {
                    uint k = eo + n * hv + j;
                    float an = sh_a[n];
                    VT hold = H[k];
                    acc += an * (M[n * hv + j] + pc.alpha * hold);
                    if (per_sample) {
                        precise VT d = an * zj;
                        H_new[k] = clamp(hebbian_pre(pc.decay, pc.eta, hold, d, noise_at(k * VW)), -pc.clip, pc.clip);
                    }
                }
            }
            sh_m[t] = acc;
            barrier();
            if (part == 0u && j < hv) {
                for (uint q = 1u; q < PN; q++) acc += sh_m[t + q * JW];
                m[b * hv + j] = acc;
            }
            barrier();
        }
    }
}
#endif
