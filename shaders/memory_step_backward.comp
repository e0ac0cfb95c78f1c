#version 450
#extension GL_GOOGLE_include_directive : require
// The backward pass of one step t of the ENN's memory path (the reverse scan's fast path;
// DESIGN.md: fused per-step kernels). Forward, for reference:
//   E_t = M + alpha H_t;  a_t = softmax(cos(z_t, E_t) / tau_e);  m_t = a_t E_t
//   pre_t = (1 - eta) H_t + eta (D_t + xi_t),  H_t+1 = clip(pre_t)
//   D_t = mean_b outer(a_tb, z_tb) (shared trace) or outer(a_tb, z_tb) per sample.
// The scan carries g_t = [pre_t inside the clip] * dH_t+1, the gradient reaching the
// update's unclipped value (zero for the last step: nothing reads the final trace).
//
//   memory_step_backward        per batch row b (as cosine_attention_backward, with E
//       read on the fly): the gradient reaching a_tb from m (dm . E_n) and from the
//       update (gs g_t[n] . z_tb, gs = eta/B shared, eta per sample), the softmax and
//       similarity gradients ds -> workspace; dz_tb += attention part + gs g_t^T a_tb.
//       Per-sample trace: also the rest of the step, since sample b owns its trace:
//       dE_tb, added to the sample's running dM sum (read from one buffer, written to
//       the other; the caller sums the samples once after the scan), and the carry
//       (below). One dispatch per step.
//   memory_step_backward_wide   the same for GPUs: one row per workgroup of WG threads,
//       every serial loop of the row kernel cut into parts (SJ threads per slot over
//       h, PN threads per vector over the slots, tree sums over the slots), so that no
//       thread walks a chain of N * h / VW loads.
//   memory_step_backward_slots  shared trace, per memory slot n (as
//       cosine_attention_backward_memory): dE_t[n] summed over the batch, dM += dE_t,
//       and the carry. Two dispatches per step.
// The carry: dH_t = (1 - eta) g_t + alpha dE_t, and g_t-1 = [pre_t-1 inside the clip] *
// dH_t, or dH_0 itself at t = 0. H_t = clip(pre_t-1) is stored, so |H_t| < clip means
// pre_t-1 = H_t passed; only where |H_t| reaches the clip is pre_t-1 recomputed (bit for
// bit as the forward pass computed it: hebbian_common.glsl, the same summation order), to
// tell a value exactly on the bound (passes) from a clipped one.
// Without the trace's gradient (trace_gradient = stop) g is absent: no carry.
//
// Speed: as the forward kernels (VW-wide loads, ROWS rows or slots per workgroup on CPU
// devices, per-row sums in registers, serial softmax gradient per row).
//
//! variant memory_step_backward_v4 -DVW=4
//! variant memory_step_backward_r8 -DROWS=8
//! variant memory_step_backward_v4r8 -DVW=4 -DROWS=8
//! variant memory_step_backward_tv4r8 -DVW=4 -DROWS=8 -DTEXEL_IN=1 -DSB=8 -DJB=4
//! variant memory_step_backward_tv4r8_ps -DVW=4 -DROWS=8 -DTEXEL_IN=1 -DSB=8 -DJB=4 -DPER_SAMPLE_SLOTS=1
//! variant memory_step_backward_tv4r8_ps_w64 -DVW=4 -DROWS=8 -DTEXEL_IN=1 -DSB=8 -DJB=4 -DPER_SAMPLE_SLOTS=1 -DSTORE_WORDS64=1
//! variant memory_step_backward_wide -DWIDE_KERNEL=1
//! variant memory_step_backward_wide_v4 -DWIDE_KERNEL=1 -DVW=4
//! variant memory_step_backward_slots -DSLOTS_KERNEL=1
//! variant memory_step_backward_slots_v4 -DSLOTS_KERNEL=1 -DVW=4
//! variant memory_step_backward_slots_r8 -DSLOTS_KERNEL=1 -DROWS=8
//! variant memory_step_backward_slots_v4r8 -DSLOTS_KERNEL=1 -DVW=4 -DROWS=8
//! variant memory_step_backward_slots_tv4r8 -DSLOTS_KERNEL=1 -DVW=4 -DROWS=8 -DTEXEL_IN=1 -DJB=4
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint MAX_N = 64;
// The noise mode compiled in (0 none, 1 Philox, 2 buffer; CPU devices, where llvmpipe
// runs both modes' code for every element otherwise), or 3: the push constant's.
layout(constant_id = 6) const uint NOISE_SPEC = 3u;
// Whether the trace's gradient is carried (0 stop, 1 exact) compiled into the row and slot
// kernels on CPU devices, or 2: the push constant's (its `if`s cost lane masks there).
layout(constant_id = 7) const uint TRACE_SPEC = 2u;
#include "philox.glsl"
#include "hebbian_common.glsl"

#if !defined(SLOTS_KERNEL) && !defined(WIDE_KERNEL)
#define ROWS_KERNEL 1
#endif
#ifndef VW
#define VW 1
#endif
#ifndef ROWS
#define ROWS 1
#endif
// Shared trace, row kernel on CPU devices: an invocation takes SB slots (the per-slot
// sums) or JB vectors of h (dz) at once, so each loaded row vector (z, dm) or row scalar
// (ds, 1/|E|, a) serves all of them; on lavapipe every load costs a loop over the SIMD
// lanes and the arithmetic is almost free.
#ifndef SB
#define SB 1
#endif
#ifndef JB
#define JB 1
#endif
// The per-sample trace's per-slot sums: slots per invocation (each also loads its own H, g).
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

layout(push_constant) uniform Push {
    uint B, N, h;
    uint per_sample;
    uvec2 seed;
    uvec2 stream;      // noise stream of step t-1
    uint noise_mode;   // 0 none, 1 Philox, 2 buffer
    uint has_trace;    // g_t is bound: the trace's gradient is exact
    uint has_prev;     // a step t-1 exists: write g_t-1, else dH_0
    float inv_tau;
    float alpha;
    float decay;       // 1 - eta
    float eta;
    float sigma;
    float clip;
    float inv_batch;   // 1/B
    float g_scale;     // eta/B (shared) or eta (per sample)
    uint mean_parts;   // how the forward pass summed the batch mean (hebbian_common.glsl)
} pc;

const uint WG = gl_WorkGroupSize.x;

// Both kernels bind the same 15 buffers (unused ones get a placeholder).
#ifdef TEXEL_IN
// The row and slot kernels on CPU devices (VW = 4): their vector inputs as uniform texel
// buffers of vec4s, which llvmpipe gathers instead of looping over the lanes with a bounds
// check each.
layout(set = 0, binding = 0) uniform samplerBuffer tex_z;
layout(set = 0, binding = 1) uniform samplerBuffer tex_M;
layout(set = 0, binding = 2) uniform samplerBuffer tex_H;
layout(set = 0, binding = 4) uniform samplerBuffer tex_dm;
layout(set = 0, binding = 5) uniform samplerBuffer tex_g;
#define LD_Z(i) texelFetch(tex_z, int(i))
#define LD_M(i) texelFetch(tex_M, int(i))
#define LD_H(i) texelFetch(tex_H, int(i))
#define LD_DM(i) texelFetch(tex_dm, int(i))
#define LD_G(i) texelFetch(tex_g, int(i))
#else
layout(std430, set = 0, binding = 0) readonly buffer Z { VT z[]; };       // z_t [B,h]
layout(std430, set = 0, binding = 1) readonly buffer Mm { VT M[]; };      // [N,h]
layout(std430, set = 0, binding = 2) readonly buffer Hm { VT H[]; };      // H_t
layout(std430, set = 0, binding = 4) readonly buffer DM { VT dm[]; };     // [B,h]
layout(std430, set = 0, binding = 5) readonly buffer G { VT g[]; };       // g_t, like H
#define LD_Z(i) z[i]
#define LD_M(i) M[i]
#define LD_H(i) H[i]
#define LD_DM(i) dm[i]
#define LD_G(i) g[i]
#endif
#ifdef TEXEL_IN
// a_t (and, read by the slot kernel, the workspace) as one-float texels: on lavapipe a
// texel fetch is a gather, a storage load a loop over the lanes.
layout(set = 0, binding = 3) uniform samplerBuffer tex_a;
#define LD_A(i) texelFetch(tex_a, int(i)).x
#else
layout(std430, set = 0, binding = 3) readonly buffer A { float a[]; };    // a_t [B,N]
#define LD_A(i) a[i]
#endif
// Workspace: ds [B,N], q = ds * s [B,N], the signed 1/|z| [B] (negative when clamped).
#if defined(TEXEL_IN) && defined(SLOTS_KERNEL)
layout(set = 0, binding = 6) uniform samplerBuffer tex_ws;
#define LD_WS(i) texelFetch(tex_ws, int(i)).x
#else
layout(std430, set = 0, binding = 6) buffer WS { float ws[]; };
#define LD_WS(i) ws[i]
#endif
layout(std430, set = 0, binding = 7) buffer DZ { VT dz[]; };                // rows: += [B,h]
layout(std430, set = 0, binding = 8) readonly buffer Hp { VT H_prev[]; };   // H_t-1
layout(std430, set = 0, binding = 9) readonly buffer Ap { float a_prev[]; };// a_t-1
layout(std430, set = 0, binding = 10) readonly buffer Zp { VT z_prev[]; };  // z_t-1
layout(std430, set = 0, binding = 11) readonly buffer Xi { VT xi[]; };      // xi_t-1
#ifdef STORE_WORDS64
// The per-sample outputs' vec4s as two 64-bit words each (CPU devices with shaderInt64):
// llvmpipe stores a vector one lane and one component at a time, so half the components is
// half the loop.
#extension GL_ARB_gpu_shader_int64 : require
layout(std430, set = 0, binding = 12) buffer GOut { u64vec2 g_out_words[]; };
#define WORDS64(v) u64vec2(packUint2x32(floatBitsToUint((v).xy)), packUint2x32(floatBitsToUint((v).zw)))
#define FROM_WORDS64(w) vec4(uintBitsToFloat(unpackUint2x32((w).x)), uintBitsToFloat(unpackUint2x32((w).y)))
#define LOAD_G_OUT(k) FROM_WORDS64(g_out_words[k])
#define STORE_G_OUT(k, v) g_out_words[k] = WORDS64(v)
#else
layout(std430, set = 0, binding = 12) buffer GOut { VT g_out[]; };  // g_t-1 or dH_0 (per-sample rows: read back)
#define LOAD_G_OUT(k) g_out[k]
#define STORE_G_OUT(k, v) g_out[k] = (v)
#endif
// Slots: dM [N,h], +=; rows (per sample): each sample's running sum [B,N,h], written as
// binding 14's plus this step's dE (two buffers the caller alternates: on lavapipe a
// texel fetch and a store instead of a storage load and a store).
#ifdef STORE_WORDS64
layout(std430, set = 0, binding = 13) buffer DMacc { u64vec2 dM_words[]; };
#define STORE_DM(k, v) dM_words[k] = WORDS64(v)
#else
layout(std430, set = 0, binding = 13) buffer DMacc { VT dM[]; };
#define STORE_DM(k, v) dM[k] = (v)
#endif
#ifdef TEXEL_IN
layout(set = 0, binding = 14) uniform samplerBuffer tex_dM_in;
#define LD_DM_IN(i) texelFetch(tex_dM_in, int(i))
#else
layout(std430, set = 0, binding = 14) readonly buffer DMin { VT dM_in[]; };
#define LD_DM_IN(i) dM_in[i]
#endif

// Noise of step t-1 at the VW elements from flat element idx of H.
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

float pass_clip(float pre, float d)
{
    return (pre >= -pc.clip && pre <= pc.clip) ? d : 0.0;
}

#if VW == 4
bool inside_clip(vec4 v) { return all(lessThan(abs(v), vec4(pc.clip))); }
VT masked(vec4 pre, vec4 d)
{
    return vec4(pass_clip(pre.x, d.x), pass_clip(pre.y, d.y), pass_clip(pre.z, d.z), pass_clip(pre.w, d.w));
}
#else
bool inside_clip(float v) { return abs(v) < pc.clip; }
VT masked(float pre, float d) { return pass_clip(pre, d); }
#endif

#ifdef ROWS_KERNEL

// Per row r of the tile and slot n, at [r * MAX_N + n]:
#ifdef PER_SAMPLE_SLOTS
// The per-sample trace's kernel on CPU devices (per_sample compiled in): a slot's values
// in one vec4, (da_n then ds_n, 1/|E_n| signed, s_n, a_n), so that the dz pass loads each
// (row, slot) once: on llvmpipe every shared-memory access is a loop over the lanes, and
// the pass otherwise runs three of them and a texel fetch of a.
shared vec4 sh_slot[ROWS * MAX_N];
#else
shared float sh_s[ROWS * MAX_N];    // s_n = zn . En_n
shared float sh_r[ROWS * MAX_N];    // 1/|E_n|, negative when clamped
shared float sh_d[ROWS * MAX_N];    // da_n, then ds_n
#endif
shared float sh_rz[ROWS];           // 1/|z|, negative when clamped
shared float sh_Q[ROWS];            // sum_n ds_n s_n

void keep_slot(uint r, uint n, float dot_ze, float da, float ee)
{
    float rE = inversesqrt(max(ee, EPS_SQ));
#ifdef PER_SAMPLE_SLOTS
    sh_slot[r * MAX_N + n] = vec4(da, ee < EPS_SQ ? -rE : rE, dot_ze * abs(sh_rz[r]) * rE, 0.0);
#else
    sh_s[r * MAX_N + n] = dot_ze * abs(sh_rz[r]) * rE;
    sh_r[r * MAX_N + n] = ee < EPS_SQ ? -rE : rE;
    sh_d[r * MAX_N + n] = da;
#endif
}

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, B = pc.B, hv = pc.h / VW;
#ifdef PER_SAMPLE_SLOTS
    const bool per_sample = true;
#else
    bool per_sample = pc.per_sample != 0u;
#endif
    bool trace = TRACE_SPEC == 2u ? pc.has_trace != 0u : TRACE_SPEC == 1u, prev = trace && pc.has_prev != 0u;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint rows = min(uint(ROWS), B - b0);
        for (uint r = t; r < rows; r += WG) {
            float zss = 0.0;
            for (uint j = 0u; j < hv; j++) {
                VT v = LD_Z((b0 + r) * hv + j);
                zss += dot(v, v);
            }
            float rz = inversesqrt(max(zss, EPS_SQ));
            sh_rz[r] = zss < EPS_SQ ? -rz : rz;
        }
        barrier();
        // Per slot: similarity, |E_n|^2, and the gradient reaching a_n (dm . E_n + gs g_n . z).
        for (uint n0 = t; n0 < N && per_sample; n0 += WG * SBP) {
            // SBP slots per invocation: each row's z and dm vectors load once for all.
            for (uint r = 0u; r < rows; r++) {
                uint b = b0 + r;
                float dot_ze[SBP], ee[SBP], dme[SBP], dgz[SBP];
                for (uint q = 0u; q < SBP; q++) dot_ze[q] = ee[q] = dme[q] = dgz[q] = 0.0;
                for (uint j = 0u; j < hv; j++) {
                    VT zj = LD_Z(b * hv + j), dmj = LD_DM(b * hv + j);
                    for (uint q = 0u; q < SBP; q++) {
                        uint n = min(n0 + q * WG, N - 1u), eo = b * N * hv + n * hv;
                        VT e = LD_M(n * hv + j) + pc.alpha * LD_H(eo + j);
                        dot_ze[q] += dot(zj, e);
                        ee[q] += dot(e, e);
                        dme[q] += dot(dmj, e);
                        if (trace) dgz[q] += dot(LD_G(eo + j), zj);
                    }
                }
                for (uint q = 0u; q < SBP; q++)
                    if (n0 + q * WG < N) keep_slot(r, n0 + q * WG, dot_ze[q], dme[q] + pc.g_scale * dgz[q], ee[q]);
            }
        }
#ifndef PER_SAMPLE_SLOTS
        for (uint n0 = t; n0 < N && !per_sample; n0 += WG * SB) {
            // Slots past N repeat the last one and rows past the batch the last row (no
            // branches around the loads); neither is kept.
            float dot_ze[ROWS][SB], dme[ROWS][SB], dgz[ROWS][SB], ee[SB];
            for (uint q = 0u; q < SB; q++) {
                ee[q] = 0.0;
                for (uint r = 0u; r < ROWS; r++) dot_ze[r][q] = dme[r][q] = dgz[r][q] = 0.0;
            }
            for (uint j = 0u; j < hv; j++) {
                VT e[SB], gv[SB];
                for (uint q = 0u; q < SB; q++) {
                    uint n = min(n0 + q * WG, N - 1u);
                    e[q] = LD_M(n * hv + j) + pc.alpha * LD_H(n * hv + j);
                    gv[q] = trace ? LD_G(n * hv + j) : VT(0.0);
                    ee[q] += dot(e[q], e[q]);
                }
                for (uint r = 0u; r < ROWS; r++) {
                    uint b = min(b0 + r, B - 1u);
                    VT zj = LD_Z(b * hv + j), dmj = LD_DM(b * hv + j);
                    for (uint q = 0u; q < SB; q++) {
                        dot_ze[r][q] += dot(zj, e[q]);
                        dme[r][q] += dot(dmj, e[q]);
                        dgz[r][q] += dot(gv[q], zj);
                    }
                }
            }
            for (uint q = 0u; q < SB; q++)
                for (uint r = 0u; r < ROWS; r++)
                    if (r < rows && n0 + q * WG < N)
                        keep_slot(r, n0 + q * WG, dot_ze[r][q], dme[r][q] + pc.g_scale * dgz[r][q], ee[q]);
        }
#endif
        barrier();
        // The softmax gradient, one invocation per row.
        for (uint r = t; r < rows; r += WG) {
            uint b = b0 + r;
            float c = 0.0;
#ifdef PER_SAMPLE_SLOTS
            for (uint n = 0u; n < N; n++) c += LD_A(b * N + n) * sh_slot[r * MAX_N + n].x;
            float Q = 0.0;
            for (uint n = 0u; n < N; n++) {
                vec4 slot = sh_slot[r * MAX_N + n];
                float an = LD_A(b * N + n), ds = an * (slot.x - c) * pc.inv_tau;
                sh_slot[r * MAX_N + n] = vec4(ds, slot.y, slot.z, an);
                float q = ds * slot.z;
#else
            for (uint n = 0u; n < N; n++) c += LD_A(b * N + n) * sh_d[r * MAX_N + n];
            float Q = 0.0;
            for (uint n = 0u; n < N; n++) {
                float ds = LD_A(b * N + n) * (sh_d[r * MAX_N + n] - c) * pc.inv_tau;
                sh_d[r * MAX_N + n] = ds;
                float q = ds * sh_s[r * MAX_N + n];
#endif
                Q += q;
                ws[b * N + n] = ds;
                ws[B * N + b * N + n] = q;
            }
            sh_Q[r] = Q;
            ws[2u * B * N + b] = sh_rz[r];
        }
        barrier();
        // dz (and per-sample dE): one invocation per vector of h (per-sample) or per JB
        // vectors (shared).
        for (uint j0 = t; j0 < hv && per_sample; j0 += WG * JB) {
            // JB vectors per invocation: each slot's ds, 1/|E|, s and a load once for all.
            for (uint r = 0u; r < rows; r++) {
                uint b = b0 + r, eo = b * N * hv;
                float rz = abs(sh_rz[r]);
                VT zn[JB], dmj[JB], ga[JB], gt[JB];
                for (uint q = 0u; q < JB; q++) {
                    uint j = min(j0 + q * WG, hv - 1u);
                    zn[q] = LD_Z(b * hv + j) * rz;
                    dmj[q] = LD_DM(b * hv + j);
                    ga[q] = gt[q] = VT(0.0);
                }
                bool clipped = false;   // H_t of this row reached the clip somewhere
                for (uint n = 0u; n < N; n++) {
#ifdef PER_SAMPLE_SLOTS
                    vec4 slot = sh_slot[r * MAX_N + n];
                    float ds = slot.x, rEs = slot.y, rE = abs(rEs), sn = slot.z, an = slot.w;
#else
                    float ds = sh_d[r * MAX_N + n], rEs = sh_r[r * MAX_N + n], rE = abs(rEs), an = LD_A(b * N + n);
                    float sn = sh_s[r * MAX_N + n];
#endif
                    for (uint q = 0u; q < JB; q++) {
                        // Vectors past the row repeat its last one (the same values written
                        // twice; its sums are not kept) instead of a branch.
                        uint j = min(j0 + q * WG, hv - 1u);
                        uint k = eo + n * hv + j;
                        VT Hk = LD_H(k), e = LD_M(n * hv + j) + pc.alpha * Hk;
                        ga[q] += ds * rE * e;
                        VT proj = rEs < 0.0 ? VT(0.0) : e * rE * sn;
                        VT v = an * dmj[q] + ds * (zn[q] - proj) * rE;   // dE_tb[n]
                        STORE_DM(k, LD_DM_IN(k) + v);
                        if (!trace) continue;
                        VT gk = LD_G(k);
                        gt[q] += an * gk;
                        clipped = clipped || !inside_clip(Hk);
                        STORE_G_OUT(k, pc.decay * gk + pc.alpha * v);
                    }
                }
                // Where H_t reached the clip, pre_t-1 decides whether the carry passes: a
                // pass of its own over the row, entered only if some element did, and not
                // an `if` per element above: lavapipe runs an `if` body for every lane under
                // a mask (here the Philox noise and three storage loads per element, most
                // of the pass's time), but leaves a loop that no lane is in after one turn.
                if (prev && clipped) {
                    for (uint n = 0u; n < N; n++) {
                        for (uint q = 0u; q < JB; q++) {
                            uint j = j0 + q * WG, k = eo + n * hv + j;
                            if (j >= hv) continue;
                            VT Hk = LD_H(k);
                            if (inside_clip(Hk)) continue;
                            precise VT D = a_prev[b * N + n] * z_prev[b * hv + j];
                            VT pre = hebbian_pre(pc.decay, pc.eta, H_prev[k], D, noise_at(k * VW));
                            STORE_G_OUT(k, masked(pre, LOAD_G_OUT(k)));
                        }
                    }
                }
                for (uint q = 0u; q < JB; q++) {
                    uint j = j0 + q * WG;
                    if (j >= hv) continue;
                    VT v = (ga[q] - (sh_rz[r] < 0.0 ? VT(0.0) : zn[q] * sh_Q[r])) * rz + pc.g_scale * gt[q];
                    dz[b * hv + j] += v;
                }
            }
        }
#ifndef PER_SAMPLE_SLOTS
        for (uint j0 = t; j0 < hv && !per_sample; j0 += WG * JB) {
            VT ga[ROWS][JB], gt[ROWS][JB];
            for (uint r = 0u; r < ROWS; r++)
                for (uint q = 0u; q < JB; q++) ga[r][q] = gt[r][q] = VT(0.0);
            for (uint n = 0u; n < N; n++) {
                // Rows past the batch read the last row's a (not kept; their ds, 1/|E| in
                // shared memory are stale but finite or unused likewise).
                float dr[ROWS], ar[ROWS];
                for (uint r = 0u; r < ROWS; r++) {
                    dr[r] = sh_d[r * MAX_N + n] * abs(sh_r[r * MAX_N + n]);
                    ar[r] = LD_A(min(b0 + r, B - 1u) * N + n);
                }
                for (uint q = 0u; q < JB; q++) {
                    uint j = min(j0 + q * WG, hv - 1u);
                    VT e = LD_M(n * hv + j) + pc.alpha * LD_H(n * hv + j);
                    VT gv = trace ? LD_G(n * hv + j) : VT(0.0);
                    for (uint r = 0u; r < ROWS; r++) {
                        ga[r][q] += dr[r] * e;
                        gt[r][q] += ar[r] * gv;
                    }
                }
            }
            for (uint q = 0u; q < JB; q++) {
                uint j = j0 + q * WG;
                for (uint r = 0u; r < ROWS; r++) {
                    if (r < rows && j < hv) {
                        uint b = b0 + r;
                        float rz = abs(sh_rz[r]);
                        VT zn = LD_Z(b * hv + j) * rz;
                        VT v = (ga[r][q] - (sh_rz[r] < 0.0 ? VT(0.0) : zn * sh_Q[r])) * rz + pc.g_scale * gt[r][q];
                        dz[b * hv + j] += v;
                    }
                }
            }
        }
#endif
        barrier();
    }
}
#endif

#ifdef WIDE_KERNEL
layout(constant_id = 4) const uint SJ = 4;    // threads per slot in the per-slot sums (WG / SJ >= MAX_N not needed)
layout(constant_id = 5) const uint JW = 32;   // threads per slot-part in the dz pass: a power of two >= 1
const uint PN = WG / JW;                      // parts of the slot range in the dz pass

shared float sh_s[MAX_N], sh_r[MAX_N], sh_d[MAX_N];
shared vec4 sh_red[WG];
shared VT sh_ga[WG], sh_gt[WG];

// Sums v over the workgroup (every invocation calls it; starts and ends with a barrier).
float workgroup_sum(float v)
{
    uint t = gl_LocalInvocationID.x;
    sh_red[t].x = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s) sh_red[t].x += sh_red[t + s].x;
        barrier();
    }
    float r = sh_red[0].x;
    barrier();
    return r;
}

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, B = pc.B, hv = pc.h / VW;
    bool per_sample = pc.per_sample != 0u, trace = pc.has_trace != 0u, prev = trace && pc.has_prev != 0u;
    for (uint b = gl_WorkGroupID.x; b < B; b += gl_NumWorkGroups.x) {
        uint eo = per_sample ? b * N * hv : 0u;
        float zp = 0.0;
        for (uint j = t; j < hv; j += WG) {
            VT v = z[b * hv + j];
            zp += dot(v, v);
        }
        float zss = workgroup_sum(zp);
        float rzs = inversesqrt(max(zss, EPS_SQ)), rz = rzs;
        if (zss < EPS_SQ) rzs = -rzs;
        // Per slot, SJ threads over the vectors of h: similarity, |E_n|^2, and the
        // gradient reaching a_n (dm . E_n + gs g_n . z).
        uint sub = t % SJ;
        for (uint n0 = 0u; n0 < N; n0 += WG / SJ) {
            uint n = n0 + t / SJ;
            vec4 acc = vec4(0.0);   // dot_ze, ee, dme, dgz
            if (n < N)
                for (uint j = sub; j < hv; j += SJ) {
                    VT e = M[n * hv + j] + pc.alpha * H[eo + n * hv + j], zj = z[b * hv + j];
                    acc += vec4(dot(zj, e), dot(e, e), dot(dm[b * hv + j], e), trace ? dot(g[eo + n * hv + j], zj) : 0.0);
                }
            sh_red[t] = acc;
            barrier();
            if (sub == 0u && n < N) {
                for (uint q = 1u; q < SJ; q++) acc += sh_red[t + q];
                float rE = inversesqrt(max(acc.y, EPS_SQ));
                sh_s[n] = acc.x * rz * rE;
                sh_r[n] = acc.y < EPS_SQ ? -rE : rE;
                sh_d[n] = acc.z + pc.g_scale * acc.w;
            }
            barrier();
        }
        // The softmax gradient: c = sum_n a_n da_n, ds_n = a_n (da_n - c) / tau, Q = sum ds_n s_n.
        float pa = 0.0;
        for (uint n = t; n < N; n += WG) pa += LD_A(b * N + n) * sh_d[n];
        float c = workgroup_sum(pa);
        float pq = 0.0;
        for (uint n = t; n < N; n += WG) {
            float ds = LD_A(b * N + n) * (sh_d[n] - c) * pc.inv_tau, q = ds * sh_s[n];
            sh_d[n] = ds;
            pq += q;
            ws[b * N + n] = ds;
            ws[B * N + b * N + n] = q;
        }
        float Q = workgroup_sum(pq);
        if (t == 0u) ws[2u * B * N + b] = rzs;
        // dz (and the per-sample rest): PN threads per vector of h, each over every PN-th slot.
        uint jl = t % JW, part = t / JW;
        for (uint j0 = 0u; j0 < hv; j0 += JW) {
            uint j = j0 + jl;
            VT ga = VT(0.0), gt = VT(0.0);
            if (j < hv) {
                VT zn = z[b * hv + j] * rz, dmj = dm[b * hv + j];
                for (uint n = part; n < N; n += PN) {
                    float ds = sh_d[n], rEs = sh_r[n], rE = abs(rEs), an = LD_A(b * N + n);
                    uint k = eo + n * hv + j;
                    VT Hk = H[k], e = M[n * hv + j] + pc.alpha * Hk;
                    ga += ds * rE * e;
                    VT gk = trace ? g[k] : VT(0.0);
                    gt += an * gk;
                    if (!per_sample) continue;
                    VT proj = rEs < 0.0 ? VT(0.0) : e * rE * sh_s[n];
                    VT v = an * dmj + ds * (zn - proj) * rE;   // dE_tb[n]
                    dM[k] = LD_DM_IN(k) + v;
                    if (!trace) continue;
                    VT dHt = pc.decay * gk + pc.alpha * v;
                    if (prev && !inside_clip(Hk)) {
                        precise VT D = a_prev[b * N + n] * z_prev[b * hv + j];
                        dHt = masked(hebbian_pre(pc.decay, pc.eta, H_prev[k], D, noise_at(k * VW)), dHt);
                    }
                    g_out[k] = dHt;
                }
            }
            sh_ga[t] = ga;
            sh_gt[t] = gt;
            barrier();
            if (part == 0u && j < hv) {
                for (uint q = 1u; q < PN; q++) {
                    ga += sh_ga[t + q * JW];
                    gt += sh_gt[t + q * JW];
                }
                VT zn = z[b * hv + j] * rz;
                dz[b * hv + j] += (ga - (zss < EPS_SQ ? VT(0.0) : zn * Q)) * rz + pc.g_scale * gt;
            }
            barrier();
        }
    }
}
#endif

#ifdef SLOTS_KERNEL
// PARTS threads share one vector j of a slot and split the batch sum among them (GPUs:
// a batch of 128 summed by one thread is a long serial chain); JT = WG / PARTS threads
// cover the vectors of h. CPU devices use PARTS = 1 (lanes are loops there anyway).
layout(constant_id = 4) const uint PARTS = 1;
const uint JT = WG / PARTS;
shared float sh_rE[ROWS];   // 1/|E_n| of the tile's slots, negative when clamped
shared float sh_Q[ROWS];    // sum_b q_bn
shared VT sh_ret[PARTS > 1u ? WG * ROWS : 1u], sh_gs[PARTS > 1u ? WG * ROWS : 1u];

// Slot n at vector j, given its batch sums ret = sum_b a_bn dm_b and gs = sum_b ds_bn
// z_b / |z_b| (k: its place in the tile): dM += dE_t, and the carry g_t-1 (or dH_0) as if
// pre_t-1 passed the clip. True where H_t reached the clip: then fix_clipped must decide.
bool finish_slot(uint k, uint n, uint j, VT ret, VT gs, bool carry)
{
    uint i = n * (pc.h / VW) + j;
    float rE = abs(sh_rE[k]);
    VT Hi = LD_H(i), e = LD_M(i) + pc.alpha * Hi;
    VT v = ret + (gs - (sh_rE[k] < 0.0 ? VT(0.0) : e * rE * sh_Q[k])) * rE;
    dM[i] += v;
    if (!carry) return false;
    g_out[i] = pc.decay * LD_G(i) + pc.alpha * v;
    return !inside_clip(Hi);
}

// Where H_t = clip(pre_t-1) reached the bound, recompute pre_t-1 (step t-1's batch mean
// summed exactly as hebbian_trace does) and let the carry pass only where it was inside.
void fix_clipped(uint n, uint j)
{
    uint B = pc.B, N = pc.N, hv = pc.h / VW, i = n * hv + j;
    if (inside_clip(LD_H(i))) return;
    precise VT D = VT(0.0);
    HEBBIAN_BATCH_SUM(D, a_prev, z_prev, B, N, hv, n, j, pc.mean_parts)
    D = D * pc.inv_batch;
    g_out[i] = masked(hebbian_pre(pc.decay, pc.eta, H_prev[i], D, noise_at(i * VW)), g_out[i]);
}

void main()
{
    uint t = gl_LocalInvocationID.x, part = t / JT, jl = t % JT;
    uint N = pc.N, B = pc.B, hv = pc.h / VW;
    bool carry = TRACE_SPEC == 2u ? pc.has_trace != 0u : TRACE_SPEC == 1u, prev = carry && pc.has_prev != 0u;
    for (uint n0 = gl_WorkGroupID.x * ROWS; n0 < N; n0 += gl_NumWorkGroups.x * ROWS) {
        uint slots = min(uint(ROWS), N - n0);
        if (PARTS > 1u) {
            // |E_n|^2 and Q_n = sum_b q_bn as workgroup sums (GPUs).
            for (uint k = 0u; k < slots; k++) {
                uint n = n0 + k;
                vec2 p = vec2(0.0);
                for (uint j = t; j < hv; j += WG) {
                    VT e = LD_M(n * hv + j) + pc.alpha * LD_H(n * hv + j);
                    p.x += dot(e, e);
                }
                for (uint b = t; b < B; b += WG) p.y += LD_WS(B * N + b * N + n);
                sh_ret[t] = VT(p.x);
                sh_gs[t] = VT(p.y);
                barrier();
                for (uint s = WG / 2u; s > 0u; s >>= 1) {
                    if (t < s) {
                        sh_ret[t] += sh_ret[t + s];
                        sh_gs[t] += sh_gs[t + s];
                    }
                    barrier();
                }
                if (t == 0u) {
                    float ee = float(sh_ret[0]), rE = inversesqrt(max(ee, EPS_SQ));
                    sh_rE[k] = ee < EPS_SQ ? -rE : rE;
                    sh_Q[k] = float(sh_gs[0]);
                }
                barrier();
            }
        } else {
            for (uint k = t; k < slots; k += WG) {
                uint n = n0 + k;
                float ee = 0.0, Q = 0.0;
                for (uint j = 0u; j < hv; j++) {
                    VT e = LD_M(n * hv + j) + pc.alpha * LD_H(n * hv + j);
                    ee += dot(e, e);
                }
                for (uint b = 0u; b < B; b++) Q += LD_WS(B * N + b * N + n);
                float rE = inversesqrt(max(ee, EPS_SQ));
                sh_rE[k] = ee < EPS_SQ ? -rE : rE;
                sh_Q[k] = Q;
            }
        }
        barrier();
#if JB > 1
        // CPU devices (PARTS = 1): each invocation takes JB vectors, so each row's a and
        // ds at the tile's slots load once for all of them.
        for (uint j0 = t; j0 < hv; j0 += WG * JB) {
            VT ret[ROWS][JB], gs[ROWS][JB];
            for (uint k = 0u; k < ROWS; k++)
                for (uint q = 0u; q < JB; q++) ret[k][q] = gs[k][q] = VT(0.0);
            for (uint b = 0u; b < B; b++) {
                // Slots past N repeat the last one and vectors past h the last one (not kept).
                float ab[ROWS], wb[ROWS], rz = abs(LD_WS(2u * B * N + b));
                for (uint k = 0u; k < ROWS; k++) {
                    uint n = min(n0 + k, N - 1u);
                    ab[k] = LD_A(b * N + n);
                    wb[k] = LD_WS(b * N + n);
                }
                for (uint q = 0u; q < JB; q++) {
                    uint j = min(j0 + q * WG, hv - 1u);
                    VT dmj = LD_DM(b * hv + j), zj = LD_Z(b * hv + j) * rz;
                    for (uint k = 0u; k < ROWS; k++) {
                        ret[k][q] += ab[k] * dmj;
                        gs[k][q] += wb[k] * zj;
                    }
                }
            }
            bool clipped = false;
            for (uint q = 0u; q < JB; q++)
                for (uint k = 0u; k < ROWS; k++)
                    if (k < slots && j0 + q * WG < hv)
                        clipped = finish_slot(k, n0 + k, j0 + q * WG, ret[k][q], gs[k][q], carry) || clipped;
            // The clip-bound fix as a pass of its own, entered only where needed: lavapipe
            // runs an `if` body under a lane mask whether or not a lane takes it (here the
            // batch sum, Philox noise and loads for every element), but leaves a loop with
            // a run-time bound that no lane is in after one turn.
            if (prev && clipped)
                for (uint k = 0u; k < slots; k++)
                    for (uint q = 0u; q < JB; q++)
                        if (j0 + q * WG < hv) fix_clipped(n0 + k, j0 + q * WG);
        }
#else
        // The loop over vectors is uniform (j0), so that the barriers below are too.
        for (uint j0 = 0u; j0 < hv; j0 += JT) {
            uint j = j0 + jl;
            bool in_row = j < hv;
            VT ret[ROWS], gs[ROWS];
            for (uint k = 0u; k < ROWS; k++) ret[k] = gs[k] = VT(0.0);
            if (in_row) {
                for (uint b = part; b < B; b += PARTS) {
                    VT dmj = LD_DM(b * hv + j), zj = LD_Z(b * hv + j) * abs(LD_WS(2u * B * N + b));
                    for (uint k = 0u; k < ROWS; k++) {
                        if (k < slots) {
                            ret[k] += LD_A(b * N + n0 + k) * dmj;
                            gs[k] += LD_WS(b * N + n0 + k) * zj;
                        }
                    }
                }
            }
            if (PARTS > 1u) {
                for (uint k = 0u; k < ROWS; k++) {
                    sh_ret[t * ROWS + k] = ret[k];
                    sh_gs[t * ROWS + k] = gs[k];
                }
                barrier();
                if (part == 0u)
                    for (uint p = 1u; p < PARTS; p++)
                        for (uint k = 0u; k < ROWS; k++) {
                            ret[k] += sh_ret[(p * JT + jl) * ROWS + k];
                            gs[k] += sh_gs[(p * JT + jl) * ROWS + k];
                        }
            }
            if (part == 0u && in_row)
                for (uint k = 0u; k < ROWS; k++)
                    if (k < slots && finish_slot(k, n0 + k, j, ret[k], gs[k], carry) && prev) fix_clipped(n0 + k, j);
            if (PARTS > 1u) barrier();
        }
#endif
        barrier();
    }
}
#endif
