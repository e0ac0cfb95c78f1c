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
// Speed (lavapipe turns every buffer access into a per-lane loop): elements go VW at a
// time (vec4 when h % 4 == 0; the Philox normals then come four per block, bit for bit
// the scalar ones), invocations loop over the elements with the grid's stride (past the
// largest grid), and backward_inputs takes ROWS batch rows per
// workgroup so that each loaded vector of a shared G serves ROWS rows.
// hebbian_trace_v4_tiles (shared trace, CPU devices): an invocation owns a tile of SB
// slots x JB vectors of h, so each loaded a[b, n] serves JB vectors and each z[b, j] SB
// slots; every element's batch sum still runs b = 0, 1, ... with the same `precise`
// operations as HEBBIAN_BATCH_SUM with one part, so the backward's clip mask agrees.
// hebbian_trace_tv4_tiles: the same reading its inputs as texels (TEXEL_IN).
//
//! variant hebbian_trace_v4 -DVW=4
//! variant hebbian_trace_v4_tiles -DVW=4 -DTILES=1
//! variant hebbian_trace_tv4_tiles -DVW=4 -DTILES=1 -DTEXEL_IN=1
//! variant hebbian_trace_backward_trace -DBACKWARD_TRACE=1
//! variant hebbian_trace_backward_trace_v4 -DBACKWARD_TRACE=1 -DVW=4
//! variant hebbian_trace_backward_inputs -DBACKWARD_INPUTS=1
//! variant hebbian_trace_backward_inputs_v4 -DBACKWARD_INPUTS=1 -DVW=4
//! variant hebbian_trace_backward_inputs_r8 -DBACKWARD_INPUTS=1 -DROWS=8
//! variant hebbian_trace_backward_inputs_v4r8 -DBACKWARD_INPUTS=1 -DVW=4 -DROWS=8
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
    uint mean_parts;   // the batch sum's interleaved parts (hebbian_common.glsl)
} pc;

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

const uint WG = gl_WorkGroupSize.x;

// Vectors of H (VW elements each) the element loops cover.
uint vector_count()
{
    return (pc.per_sample != 0u ? pc.B * pc.N * pc.h : pc.N * pc.h) / VW;
}

#if defined(TEXEL_IN)
// The tiles on CPU devices with texel buffers: the inputs as texels (H, z, xi vec4s, a
// floats), which llvmpipe gathers instead of looping over the lanes for every load.
layout(set = 0, binding = 0) uniform samplerBuffer tex_H;
layout(set = 0, binding = 1) uniform samplerBuffer tex_a;
layout(set = 0, binding = 2) uniform samplerBuffer tex_z;
layout(set = 0, binding = 3) uniform samplerBuffer tex_xi;
#define LD_H(i) texelFetch(tex_H, int(i))
#define LD_A(i) texelFetch(tex_a, int(i)).x
#define LD_Z(i) texelFetch(tex_z, int(i))
#define LD_XI(i) texelFetch(tex_xi, int(i))
#elif !defined(BACKWARD_INPUTS)
layout(std430, set = 0, binding = 0) readonly buffer Hm { VT H[]; };
layout(std430, set = 0, binding = 1) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 2) readonly buffer Z { VT z[]; };
layout(std430, set = 0, binding = 3) readonly buffer Xi { VT xi[]; };
#define LD_H(i) H[i]
#define LD_A(i) a[i]
#define LD_Z(i) z[i]
#define LD_XI(i) xi[i]
#endif

#if !defined(BACKWARD_INPUTS)

// Noise of the VW elements starting at flat element idx.
VT noise_at(uint idx)
{
#if VW == 4
    if (pc.noise_mode == 1u) return hebbian_philox_noise4(pc.sigma, pc.seed, pc.stream, idx);
#else
    if (pc.noise_mode == 1u) return hebbian_philox_noise(pc.sigma, pc.seed, pc.stream, idx);
#endif
    if (pc.noise_mode == 2u) return LD_XI(idx / VW);
    return VT(0.0);
}

#ifndef TEXEL_IN
// The unclipped new trace of vector iv of H. The batch sum runs in order with `precise`
// operations, component for component the same in every variant and kernel.
VT trace_pre(uint iv)
{
    uint idx = iv * VW, nh = pc.N * pc.h, hv = pc.h / VW;
    uint b = pc.per_sample != 0u ? idx / nh : 0u;
    uint nj = idx - b * nh;
    uint n = nj / pc.h, jv = (nj - n * pc.h) / VW;
    precise VT d;
    if (pc.per_sample != 0u) {
        d = a[b * pc.N + n] * z[b * hv + jv];
    } else {
        d = VT(0.0);
        HEBBIAN_BATCH_SUM(d, a, z, pc.B, pc.N, hv, n, jv, pc.mean_parts)
        d = d * pc.inv_batch;
    }
    return hebbian_pre(pc.decay, pc.eta, H[iv], d, noise_at(idx));
}
#endif  // !TEXEL_IN
#endif

#if !defined(BACKWARD_TRACE) && !defined(BACKWARD_INPUTS)
layout(std430, set = 0, binding = 4) writeonly buffer HNew { VT H_new[]; };

shared VT sh_part[WG];

#ifdef TILES
const uint SB = 8u, JB = 4u;  // as TILE_SLOTS, TILE_VECTORS in the launcher

void main()
{
    uint hv = pc.h / VW, tiles_j = (hv + JB - 1u) / JB, tiles = (pc.N + SB - 1u) / SB * tiles_j;
    for (uint i = gl_GlobalInvocationID.x; i < tiles; i += gl_NumWorkGroups.x * WG) {
        uint n0 = i / tiles_j * SB, j0 = i % tiles_j * JB;
        precise VT acc[SB][JB];
        for (uint s = 0u; s < SB; s++)
            for (uint q = 0u; q < JB; q++) acc[s][q] = VT(0.0);
        for (uint b = 0u; b < pc.B; b++) {
            // Slots and vectors past the edges repeat the last one (not kept).
            float av[SB];
            VT zv[JB];
            for (uint s = 0u; s < SB; s++) av[s] = LD_A(b * pc.N + min(n0 + s, pc.N - 1u));
            for (uint q = 0u; q < JB; q++) zv[q] = LD_Z(b * hv + min(j0 + q, hv - 1u));
            for (uint s = 0u; s < SB; s++)
                for (uint q = 0u; q < JB; q++) acc[s][q] += av[s] * zv[q];
        }
        for (uint s = 0u; s < SB; s++)
            for (uint q = 0u; q < JB; q++) {
                uint n = n0 + s, j = j0 + q;
                if (n >= pc.N || j >= hv) continue;
                uint iv = n * hv + j;
                precise VT d = acc[s][q] * pc.inv_batch;
                H_new[iv] = clamp(hebbian_pre(pc.decay, pc.eta, LD_H(iv), d, noise_at(iv * VW)), -pc.clip, pc.clip);
            }
    }
}
#else
void main()
{
    uint count = vector_count();
    uint P = pc.per_sample != 0u ? 1u : pc.mean_parts;
    if (P <= 1u) {
        uint stride = gl_NumWorkGroups.x * WG;
        for (uint iv = gl_GlobalInvocationID.x; iv < count; iv += stride)
            H_new[iv] = clamp(trace_pre(iv), -pc.clip, pc.clip);
        return;
    }
    // Shared trace on GPUs: P threads per vector, each summing every P-th batch row, the
    // parts added in order by the first (as HEBBIAN_BATCH_SUM does serially).
    uint JT = WG / P, t = gl_LocalInvocationID.x, part = t / JT, l = t % JT, hv = pc.h / VW;
    for (uint v0 = gl_WorkGroupID.x * JT; v0 < count; v0 += gl_NumWorkGroups.x * JT) {
        uint iv = v0 + l, n = iv / hv, jv = iv - n * hv;
        precise VT s = VT(0.0);
        if (iv < count)
            for (uint b = part; b < pc.B; b += P) s += a[b * pc.N + n] * z[b * hv + jv];
        sh_part[t] = s;
        barrier();
        if (part == 0u && iv < count) {
            precise VT d = s;
            for (uint q = 1u; q < P; q++) d = d + sh_part[t + q * JT];
            d = d * pc.inv_batch;
            H_new[iv] = clamp(hebbian_pre(pc.decay, pc.eta, H[iv], d, noise_at(iv * VW)), -pc.clip, pc.clip);
        }
        barrier();
    }
}
#endif  // TILES
#endif

#ifdef BACKWARD_TRACE
layout(std430, set = 0, binding = 4) readonly buffer DHNew { VT dH_new[]; };
layout(std430, set = 0, binding = 5) buffer DHPrev { VT dH_prev[]; };
layout(std430, set = 0, binding = 6) writeonly buffer G { VT G_out[]; };

// The gradient passes where the clip did not bind (bounds included).
float pass_clip(float pre, float d)
{
    return (pre >= -pc.clip && pre <= pc.clip) ? d : 0.0;
}

void main()
{
    uint count = vector_count(), stride = gl_NumWorkGroups.x * WG;
    for (uint iv = gl_GlobalInvocationID.x; iv < count; iv += stride) {
        VT pre = trace_pre(iv), dn = dH_new[iv];
#if VW == 4
        VT g = vec4(pass_clip(pre.x, dn.x), pass_clip(pre.y, dn.y), pass_clip(pre.z, dn.z), pass_clip(pre.w, dn.w));
#else
        VT g = pass_clip(pre, dn);
#endif
        VT v = pc.decay * g;
        dH_prev[iv] = pc.beta_dH != 0.0 ? v + pc.beta_dH * dH_prev[iv] : v;
        G_out[iv] = pc.g_scale * g;
    }
}
#endif

#ifdef BACKWARD_INPUTS
layout(std430, set = 0, binding = 0) readonly buffer G { VT G_in[]; };
layout(std430, set = 0, binding = 1) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 2) readonly buffer Z { VT z[]; };
layout(std430, set = 0, binding = 3) buffer DA { float da[]; };
layout(std430, set = 0, binding = 4) buffer DZ { VT dz[]; };

// ROWS batch rows per workgroup: da [B,N] with one invocation per slot, then dz [B,h]
// with one invocation per vector of h; sums in registers. Rows past the batch repeat the
// last row (so that the loads need no branch) and are not written.
void main()
{
    uint t = gl_LocalInvocationID.x;
    uint N = pc.N, B = pc.B, hv = pc.h / VW;
    bool per_sample = pc.per_sample != 0u;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint rows = min(uint(ROWS), B - b0);
        for (uint n = t; n < N; n += WG) {
            if (per_sample) {
                for (uint r = 0u; r < rows; r++) {
                    uint b = b0 + r, i = b * N + n;
                    float acc = 0.0;
                    for (uint j = 0u; j < hv; j++) acc += dot(G_in[b * N * hv + n * hv + j], z[b * hv + j]);
                    da[i] = pc.beta_da != 0.0 ? acc + pc.beta_da * da[i] : acc;
                }
                continue;
            }
            float acc[ROWS];
            for (uint r = 0u; r < ROWS; r++) acc[r] = 0.0;
            {
                for (uint j = 0u; j < hv; j++) {
                    VT g = G_in[n * hv + j];
                    for (uint r = 0u; r < ROWS; r++) acc[r] += dot(g, z[min(b0 + r, B - 1u) * hv + j]);
                }
            }
            for (uint r = 0u; r < ROWS; r++) {
                if (r < rows) {
                    uint i = (b0 + r) * N + n;
                    da[i] = pc.beta_da != 0.0 ? acc[r] + pc.beta_da * da[i] : acc[r];
                }
            }
        }
        for (uint j = t; j < hv; j += WG) {
            if (per_sample) {
                for (uint r = 0u; r < rows; r++) {
                    uint b = b0 + r, i = b * hv + j;
                    VT acc = VT(0.0);
                    for (uint n = 0u; n < N; n++) acc += G_in[b * N * hv + n * hv + j] * a[b * N + n];
                    dz[i] = pc.beta_dz != 0.0 ? acc + pc.beta_dz * dz[i] : acc;
                }
                continue;
            }
            VT acc[ROWS];
            for (uint r = 0u; r < ROWS; r++) acc[r] = VT(0.0);
            {
                for (uint n = 0u; n < N; n++) {
                    VT g = G_in[n * hv + j];
                    for (uint r = 0u; r < ROWS; r++) acc[r] += g * a[min(b0 + r, B - 1u) * N + n];
                }
            }
            for (uint r = 0u; r < ROWS; r++) {
                if (r < rows) {
                    uint i = (b0 + r) * hv + j;
                    dz[i] = pc.beta_dz != 0.0 ? acc[r] + pc.beta_dz * dz[i] : acc[r];
                }
            }
        }
    }
}
#endif
