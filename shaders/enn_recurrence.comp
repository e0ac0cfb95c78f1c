#version 450
// The h-dependent part of the ENN cell over a whole sequence in ONE dispatch. Batch rows
// are independent in this recurrence, so a workgroup owns ROWS rows and carries them
// through all T steps, with workgroup barriers between the stages of a step.
//
// Forward (enn_recurrence, enn_recurrence_v4), for t = 0..T-1, every row b < B:
//   u_t[b]     = ReLU(u_t[b] + h_t[b] W_uh)         u_t holds the z, m part on entry
//   hp_t[b]    = ReLU(u_t[b] W_o + b_o)
//   h_{t+1}[b] = LayerNorm(hp_t[b]) (mean, rstd saved at t*Bp + b), or hp_t[b] (LN = 0)
// Backward (enn_recurrence_backward, enn_recurrence_backward_v4), t = T-1..0:
//   g = dhs_{t+1}[b]   (head gradient plus the recurrent part added by step t+1)
//   dhp = rstd (gg - mean(gg) - xhat mean(gg xhat)) * (hp > 0), gg = g gain   (as
//         layer_norm_backward_input), or g * (h_{t+1} > 0) without layer norm
//   du = (dhp W_o^T) * (u_t > 0);   dhs_t[b] += du W_uh^T
//
// Layout: W_uh [h,3h] and W_o [3h,h] row-major. Sequence buffers are per-step slabs
// (push constants, in VT units); rows b >= B are never read or written.
// Each stage's threads own output column groups (VW wide) of all ROWS rows, so every
// loaded weight serves ROWS rows; the rows' vectors live in shared memory. On lavapipe
// every buffer or shared access is a per-lane loop: vec4 loads (VW = 4 when h % 4 == 0)
// and ROWS = 8 matter there. Backward products are dot products along the contiguous
// rows of W_o and W_uh (no transposed copies).
// Layer-norm row sums are tree reductions over G lanes per row (G a power of two,
// ROWS * G <= workgroup size): the portable fp32 path, no subgroup operations.
//
//! variant enn_recurrence_v4 -DVW=4
//! variant enn_recurrence_backward -DBACKWARD=1
//! variant enn_recurrence_backward_v4 -DBACKWARD=1 -DVW=4
//! variant enn_recurrence_tv4 -DVW=4 -DTEXEL_W=1
//! variant enn_recurrence_backward_tv4 -DBACKWARD=1 -DVW=4 -DTEXEL_W=1
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint ROWS = 1;  // batch rows per workgroup
layout(constant_id = 4) const uint H = 4;     // hidden width h (a multiple of VW)
layout(constant_id = 5) const uint LN = 1;    // 1: layer norm after the output ReLU
layout(constant_id = 6) const uint G = 1;     // lanes per row in the layer-norm sums
// Threads splitting the 3h-long sums of the h-wide products (hp forward, dhs backward):
// on GPUs h/VW columns alone leave most of the workgroup idle and each thread a chain of
// 3h loads; CPU devices use 1 (lanes are loops there).
layout(constant_id = 7) const uint KP = 1;
layout(constant_id = 8) const uint KPU = 1;   // the same for the 3h-wide products' h-long sums

#ifndef VW
#define VW 1
#endif
#if VW == 4
#define VT vec4
#define HSUM(v) dot((v), vec4(1.0))
#define SELECT_POS(x, v) mix(vec4(0.0), (v), greaterThan((x), vec4(0.0)))
#else
#define VT float
#define HSUM(v) (v)
#define SELECT_POS(x, v) ((x) > 0.0 ? (v) : 0.0)
#endif

const uint WG = gl_WorkGroupSize.x;
const uint H4 = H / VW;      // an h-wide row in VT units
const uint U4 = 3u * H / VW; // a 3h-wide row in VT units

shared vec2 seg_scratch[WG];

// The weights W_uh [h,3h] and W_o [3h,h] (bindings 0, 1): storage buffers, or with TEXEL_W
// (CPU devices, VW = 4) uniform texel buffers of vec4s, which llvmpipe fetches with a
// gather instead of a loop over the lanes with a bounds check each.
#ifdef TEXEL_W
#define WEIGHT_BINDINGS \
    layout(set = 0, binding = 0) uniform samplerBuffer tex_W_uh; \
    layout(set = 0, binding = 1) uniform samplerBuffer tex_W_o;
#define WUH(i) texelFetch(tex_W_uh, int(i))
#define WO(i) texelFetch(tex_W_o, int(i))
#else
#define WEIGHT_BINDINGS \
    layout(std430, set = 0, binding = 0) readonly buffer Wuh { VT W_uh[]; }; \
    layout(std430, set = 0, binding = 1) readonly buffer Wo { VT W_o[]; };
#define WUH(i) W_uh[i]
#define WO(i) W_o[i]
#endif

// The column groups c < H4 with their KP parts, in passes of WG threads (a uniform loop,
// so that the part sums' barriers are uniform too): thread `tid` of a pass takes
// column idx % H4 and part idx / H4 of the k-range [0, U4).
#define SPLIT_PASSES for (uint c0 = 0u; c0 < H4 * KP; c0 += WG)
#define SPLIT_PASSES_U for (uint c0 = 0u; c0 < U4 * KPU; c0 += WG)
// Adds the KPU (KP) parts' sums into part 0's acc: every thread of the pass calls it.
#define GATHER_PARTS(parts, cols)                                                            \
    if (parts > 1u) {                                                                        \
        for (uint r = 0u; r < ROWS; r++) sh_part[tid * ROWS + r] = acc[r];                   \
        barrier();                                                                           \
        if (on && part == 0u)                                                                \
            for (uint q = 1u; q < parts; q++)                                                \
                for (uint r = 0u; r < ROWS; r++) acc[r] += sh_part[(tid + q * (cols)) * ROWS + r]; \
    }
shared VT sh_part[KP > 1u ? WG * ROWS : 1u];

// Sums v over the G lanes of each row's segment; called by every invocation in uniform
// control flow; starts and ends with a barrier.
vec2 segment_sum(vec2 v)
{
    uint t = gl_LocalInvocationID.x, lane = t % G;
    seg_scratch[t] = v;
    barrier();
    for (uint s = G / 2u; s > 0u; s >>= 1) {
        if (lane < s) seg_scratch[t] += seg_scratch[t + s];
        barrier();
    }
    vec2 r = seg_scratch[t - lane];
    barrier();
    return r;
}

#ifndef BACKWARD
WEIGHT_BINDINGS
layout(std430, set = 0, binding = 2) readonly buffer Bo { VT b_o[]; };
layout(std430, set = 0, binding = 3) readonly buffer Gain { VT gain[]; };
layout(std430, set = 0, binding = 4) readonly buffer Bias { VT bias[]; };
layout(std430, set = 0, binding = 5) buffer U { VT u[]; };
layout(std430, set = 0, binding = 6) buffer Hs { VT hs[]; };
layout(std430, set = 0, binding = 7) writeonly buffer Hp { VT hp[]; };
layout(std430, set = 0, binding = 8) writeonly buffer Mean { float mean_out[]; };
layout(std430, set = 0, binding = 9) writeonly buffer Rstd { float rstd_out[]; };

layout(push_constant) uniform Push {
    uint B, Bp, T;
    uint slab_u, slab_hs, slab_hp; // VT units
    float eps;
} pc;

shared VT sh_h[ROWS * H4];  // h_t, then hp_t, then h_{t+1}
shared VT sh_u[ROWS * U4];  // u_t after its ReLU

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint seg = tid / G, lane = tid % G;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < pc.B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint nrows = min(ROWS, pc.B - b0);
        for (uint i = tid; i < ROWS * H4; i += WG) {
            uint r = i / H4;
            sh_h[i] = r < nrows ? hs[(b0 + r) * H4 + i % H4] : VT(0.0);
        }
        barrier();
        for (uint t = 0u; t < pc.T; t++) {
            // u_t = ReLU(u_t + h_t W_uh): columns c of 3h.
            uint ub = t * pc.slab_u + b0 * U4;
            SPLIT_PASSES_U {
                uint idx = c0 + tid, c = idx % U4, part = idx / U4;
                bool on = idx < U4 * KPU;
                VT acc[ROWS];
                for (uint r = 0u; r < ROWS; r++) acc[r] = VT(0.0);
                for (uint k = on ? part * H4 / KPU : 0u, k_end = on ? (part + 1u) * H4 / KPU : 0u; k < k_end; k++) {
#if VW == 4
                    vec4 w0 = WUH((4u * k) * U4 + c), w1 = WUH((4u * k + 1u) * U4 + c);
                    vec4 w2 = WUH((4u * k + 2u) * U4 + c), w3 = WUH((4u * k + 3u) * U4 + c);
                    for (uint r = 0u; r < ROWS; r++) {
                        vec4 x = sh_h[r * H4 + k];
                        acc[r] += x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3;
                    }
#else
                    float w = WUH(k * U4 + c);
                    for (uint r = 0u; r < ROWS; r++) acc[r] += sh_h[r * H4 + k] * w;
#endif
                }
                GATHER_PARTS(KPU, U4)
                if (on && part == 0u) {
                    for (uint r = 0u; r < ROWS; r++) {
                        VT v = max(acc[r] + (r < nrows ? u[ub + r * U4 + c] : VT(0.0)), VT(0.0));
                        sh_u[r * U4 + c] = v;
                        if (r < nrows) u[ub + r * U4 + c] = v;
                    }
                }
                if (KPU > 1u) barrier();
            }
            barrier();
            // hp_t = ReLU(u_t W_o + b_o): columns c of h. Written to hs directly without
            // layer norm.
            uint hb = (t + 1u) * pc.slab_hs + b0 * H4, pb = t * pc.slab_hp + b0 * H4;
            SPLIT_PASSES {
                uint idx = c0 + tid, c = idx % H4, part = idx / H4;
                bool on = idx < H4 * KP;
                VT acc[ROWS];
                for (uint r = 0u; r < ROWS; r++) acc[r] = VT(0.0);
                for (uint k = on ? part * U4 / KP : 0u, k_end = on ? (part + 1u) * U4 / KP : 0u; k < k_end; k++) {
#if VW == 4
                    vec4 w0 = WO((4u * k) * H4 + c), w1 = WO((4u * k + 1u) * H4 + c);
                    vec4 w2 = WO((4u * k + 2u) * H4 + c), w3 = WO((4u * k + 3u) * H4 + c);
                    for (uint r = 0u; r < ROWS; r++) {
                        vec4 x = sh_u[r * U4 + k];
                        acc[r] += x.x * w0 + x.y * w1 + x.z * w2 + x.w * w3;
                    }
#else
                    float w = WO(k * H4 + c);
                    for (uint r = 0u; r < ROWS; r++) acc[r] += sh_u[r * U4 + k] * w;
#endif
                }
                if (KP > 1u) {
                    for (uint r = 0u; r < ROWS; r++) sh_part[tid * ROWS + r] = acc[r];
                    barrier();
                    if (on && part == 0u)
                        for (uint q = 1u; q < KP; q++)
                            for (uint r = 0u; r < ROWS; r++) acc[r] += sh_part[(tid + q * H4) * ROWS + r];
                }
                if (on && part == 0u) {
                    VT bo = b_o[c];
                    for (uint r = 0u; r < ROWS; r++) {
                        VT v = max(acc[r] + bo, VT(0.0));
                        sh_h[r * H4 + c] = v;
                        if (r < nrows) {
                            if (LN != 0u) hp[pb + r * H4 + c] = v;
                            else hs[hb + r * H4 + c] = v;
                        }
                    }
                }
                if (KP > 1u) barrier();
            }
            barrier();
            if (LN != 0u) {
                // Two passes over the row (as layer_norm.comp): no E[x^2] - mean^2.
                uint r = seg;
                float s = 0.0;
                if (r < ROWS)
                    for (uint c = lane; c < H4; c += G) s += HSUM(sh_h[r * H4 + c]);
                float mean = segment_sum(vec2(s, 0.0)).x / float(H);
                float v = 0.0;
                if (r < ROWS)
                    for (uint c = lane; c < H4; c += G) {
                        VT d = sh_h[r * H4 + c] - mean;
                        v += HSUM(d * d);
                    }
                float rstd = inversesqrt(segment_sum(vec2(v, 0.0)).x / float(H) + pc.eps);
                if (r < ROWS) {
                    for (uint c = lane; c < H4; c += G) {
                        VT y = (sh_h[r * H4 + c] - mean) * rstd * gain[c] + bias[c];
                        sh_h[r * H4 + c] = y;
                        if (r < nrows) hs[hb + r * H4 + c] = y;
                    }
                    if (lane == 0u && r < nrows) {
                        mean_out[t * pc.Bp + b0 + r] = mean;
                        rstd_out[t * pc.Bp + b0 + r] = rstd;
                    }
                }
                barrier();
            }
        }
    }
}
#endif

#ifdef BACKWARD
WEIGHT_BINDINGS
layout(std430, set = 0, binding = 2) readonly buffer Gain { VT gain[]; };
layout(std430, set = 0, binding = 3) readonly buffer U { VT u[]; };
layout(std430, set = 0, binding = 4) readonly buffer Act { VT act[]; }; // hp_t, or h_{t+1} without LN
layout(std430, set = 0, binding = 5) readonly buffer Mean { float mean_in[]; };
layout(std430, set = 0, binding = 6) readonly buffer Rstd { float rstd_in[]; };
layout(std430, set = 0, binding = 7) buffer Dhs { VT dhs[]; };
layout(std430, set = 0, binding = 8) writeonly buffer Dhp { VT dhp[]; };
layout(std430, set = 0, binding = 9) writeonly buffer Du { VT du[]; };

layout(push_constant) uniform Push {
    uint B, Bp, T;
    uint slab_u, slab_act, slab_dhs, slab_dhp, slab_du; // VT units
} pc;

shared VT sh_g[ROWS * H4];   // dhs_{t+1}, then dhp_t, then dhs_t (the next step's g)
shared VT sh_du[ROWS * U4];  // du_t

void main()
{
    uint tid = gl_LocalInvocationID.x;
    uint seg = tid / G, lane = tid % G;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < pc.B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint nrows = min(ROWS, pc.B - b0);
        for (uint i = tid; i < ROWS * H4; i += WG) {
            uint r = i / H4;
            sh_g[i] = r < nrows ? dhs[pc.T * pc.slab_dhs + (b0 + r) * H4 + i % H4] : VT(0.0);
        }
        barrier();
        for (uint t = pc.T; t-- > 0u;) {
            uint ab = t * pc.slab_act + b0 * H4, pb = t * pc.slab_dhp + b0 * H4;
            // dhp_t: the layer norm's input gradient, or g, through the output ReLU.
            if (LN != 0u) {
                uint r = seg;
                float mean = 0.0, rstd = 1.0;
                if (r < nrows) {
                    mean = mean_in[t * pc.Bp + b0 + r];
                    rstd = rstd_in[t * pc.Bp + b0 + r];
                }
                vec2 s = vec2(0.0);
                if (r < nrows)
                    for (uint c = lane; c < H4; c += G) {
                        VT gg = sh_g[r * H4 + c] * gain[c];
                        VT xhat = (act[ab + r * H4 + c] - mean) * rstd;
                        s += vec2(HSUM(gg), HSUM(gg * xhat));
                    }
                vec2 c12 = segment_sum(s) / float(H);
                if (r < ROWS)
                    for (uint c = lane; c < H4; c += G) {
                        VT v = VT(0.0);
                        if (r < nrows) {
                            VT x = act[ab + r * H4 + c];
                            VT xhat = (x - mean) * rstd;
                            v = SELECT_POS(x, rstd * (sh_g[r * H4 + c] * gain[c] - c12.x - xhat * c12.y));
                            dhp[pb + r * H4 + c] = v;
                        }
                        sh_g[r * H4 + c] = v;
                    }
            } else {
                for (uint i = tid; i < ROWS * H4; i += WG) {
                    uint r = i / H4;
                    VT v = VT(0.0);
                    if (r < nrows) {
                        v = SELECT_POS(act[ab + i], sh_g[i]);
                        dhp[pb + i] = v;
                    }
                    sh_g[i] = v;
                }
            }
            barrier();
            // du_t = (dhp W_o^T) * (u_t > 0): column groups c of 3h, dot products along
            // the rows 4c..4c+3 of W_o.
            uint ub = t * pc.slab_u + b0 * U4, db = t * pc.slab_du + b0 * U4;
            SPLIT_PASSES_U {
                uint idx = c0 + tid, c = idx % U4, part = idx / U4;
                bool on = idx < U4 * KPU;
                VT acc[ROWS];
                for (uint r = 0u; r < ROWS; r++) acc[r] = VT(0.0);
                for (uint k = on ? part * H4 / KPU : 0u, k_end = on ? (part + 1u) * H4 / KPU : 0u; k < k_end; k++) {
#if VW == 4
                    vec4 w0 = WO((4u * c) * H4 + k), w1 = WO((4u * c + 1u) * H4 + k);
                    vec4 w2 = WO((4u * c + 2u) * H4 + k), w3 = WO((4u * c + 3u) * H4 + k);
                    for (uint r = 0u; r < ROWS; r++) {
                        vec4 g = sh_g[r * H4 + k];
                        acc[r] += vec4(dot(w0, g), dot(w1, g), dot(w2, g), dot(w3, g));
                    }
#else
                    float w = WO(c * H4 + k);
                    for (uint r = 0u; r < ROWS; r++) acc[r] += sh_g[r * H4 + k] * w;
#endif
                }
                GATHER_PARTS(KPU, U4)
                if (on && part == 0u) {
                    for (uint r = 0u; r < ROWS; r++) {
                        VT v = VT(0.0);
                        if (r < nrows) {
                            v = SELECT_POS(u[ub + r * U4 + c], acc[r]);
                            du[db + r * U4 + c] = v;
                        }
                        sh_du[r * U4 + c] = v;
                    }
                }
                if (KPU > 1u) barrier();
            }
            barrier();
            // dhs_t += du_t W_uh^T: column groups c of h, dot products along the rows
            // 4c..4c+3 of W_uh. The sum is also the next step's g.
            uint gb = t * pc.slab_dhs + b0 * H4;
            SPLIT_PASSES {
                uint idx = c0 + tid, c = idx % H4, part = idx / H4;
                bool on = idx < H4 * KP;
                VT acc[ROWS];
                for (uint r = 0u; r < ROWS; r++) acc[r] = VT(0.0);
                for (uint k = on ? part * U4 / KP : 0u, k_end = on ? (part + 1u) * U4 / KP : 0u; k < k_end; k++) {
#if VW == 4
                    vec4 w0 = WUH((4u * c) * U4 + k), w1 = WUH((4u * c + 1u) * U4 + k);
                    vec4 w2 = WUH((4u * c + 2u) * U4 + k), w3 = WUH((4u * c + 3u) * U4 + k);
                    for (uint r = 0u; r < ROWS; r++) {
                        vec4 d = sh_du[r * U4 + k];
                        acc[r] += vec4(dot(w0, d), dot(w1, d), dot(w2, d), dot(w3, d));
                    }
#else
                    float w = WUH(c * U4 + k);
                    for (uint r = 0u; r < ROWS; r++) acc[r] += sh_du[r * U4 + k] * w;
#endif
                }
                if (KP > 1u) {
                    for (uint r = 0u; r < ROWS; r++) sh_part[tid * ROWS + r] = acc[r];
                    barrier();
                    if (on && part == 0u)
                        for (uint q = 1u; q < KP; q++)
                            for (uint r = 0u; r < ROWS; r++) acc[r] += sh_part[(tid + q * H4) * ROWS + r];
                }
                if (on && part == 0u) {
                    for (uint r = 0u; r < ROWS; r++) {
                        VT v = VT(0.0);
                        if (r < nrows) {
                            v = dhs[gb + r * H4 + c] + acc[r];
                            dhs[gb + r * H4 + c] = v;
                        }
                        sh_g[r * H4 + c] = v;
                    }
                }
                if (KP > 1u) barrier();
            }
            barrier();
        }
    }
}
#endif
