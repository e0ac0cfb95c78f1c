#version 450
// The ENN recurrence of shaders/enn_recurrence.comp (same contract, bindings and push
// constants; runtime/ops/recurrence.h) written for CPU devices (lavapipe), where a
// workgroup's invocations run as loops over 8-wide SIMD lanes and every shared-memory or
// storage-buffer access is a loop over the lanes (~140 cycles for a vec4, measured),
// while a texel fetch or image load is a gather (~30).
//
//   - No shared memory: the rows' vectors that the products read (h_t, u_t forward;
//     dhp_t, du_t backward) are read back from the output sequences they were just
//     written to, bound as storage texel buffers (imageBuffer), with image barriers
//     between the stages. Rows b >= B of the last workgroup read row B-1 instead (the
//     bindings end there) and are never stored.
//   - Read-only operands are uniform texel buffers: the weights, b_o, gain, bias, and
//     backward u and the activations.
//   - Register blocks: invocation j of a product with N column groups (4 floats each)
//     owns the CG = 4 groups j + i * NT (i < CG, NT = N / CG rounded up) of all ROWS
//     rows: per k it fetches 4 CG weight texels, each serving every row, and ROWS
//     vec4s of x, each serving 4 CG FMAs.
//   - One invocation per row in the layer norm: no workgroup reductions.
// Needs h % 4 == 0, ROWS <= 8 and a workgroup of at least ROWS invocations.
//
//! variant enn_recurrence_cpu_backward -DBACKWARD=1
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint ROWS = 8;  // batch rows per workgroup, <= 8
layout(constant_id = 4) const uint H = 4;     // hidden width h, a multiple of 4
layout(constant_id = 5) const uint LN = 1;    // 1: layer norm after the output ReLU

const uint WG = gl_WorkGroupSize.x;
const uint H4 = H / 4u;      // an h-wide row in vec4s
const uint U4 = 3u * H / 4u; // a 3h-wide row in vec4s

#define HSUM(v) dot((v), vec4(1.0))
#define SELECT_POS(x, v) mix(vec4(0.0), (v), greaterThan((x), vec4(0.0)))
#define TEXEL(name, i) texelFetch(name, int(i))
#define LOAD(img, i) imageLoad(img, int(i))
#define STORE_IMG(img, i, v) imageStore(img, int(i), v)
// Image writes of one stage made visible to the next stage's loads in other invocations.
#define STAGE_BARRIER memoryBarrierImage(); barrier();

layout(set = 0, binding = 0) uniform samplerBuffer tex_W_uh;  // [h, 3h]
layout(set = 0, binding = 1) uniform samplerBuffer tex_W_o;   // [3h, h]
#define WUH(i) TEXEL(tex_W_uh, i)
#define WO(i) TEXEL(tex_W_o, i)

// ---------------------------------------------------------------- register blocks
// The block is spelled out by macros: NIR does not always unroll nested loops, and a
// register array indexed by a loop counter becomes scratch memory (a loop per access).
// Groups past N fetch column N - 1 and are never stored. 8 rows x CG = 4 groups
// measured fastest at h = 128 (CG = 2: 1.2x the time, CG = 8: 1.4-1.6x, 16 rows: the
// same; more accumulators spill).
#define CG 4
#define COLS(F, a) F(a, 0) F(a, 1) F(a, 2) F(a, 3)
#define ALL_ROWS(F, a) F(0, a) F(1, a) F(2, a) F(3, a) F(4, a) F(5, a) F(6, a) F(7, a)
// a += xv times the 4 x 4 weight block w0..w3: forward products combine the rows of W
// (xv.x w0 + xv.y w1 + ...), backward ones take dot products along them.
#define UPD_AXPY(a, xv) a = fma(vec4(xv.w), w3, fma(vec4(xv.z), w2, fma(vec4(xv.y), w1, fma(vec4(xv.x), w0, a))));
#define UPD_DOT(a, xv) a += vec4(dot(w0, xv), dot(w1, xv), dot(w2, xv), dot(w3, xv));
#define ZERO_ACC(r, i) acc[r][i] = vec4(0.0);
#define ZERO_ROW(r, u) COLS(ZERO_ACC, r)
#define COL_INDEX(u, i) col[i] = min(j + (i) * NT, N - 1u);
#define LOAD_X(r, u) if ((r) < ROWS) x[r] = X_AT(min(r, last));
#define UPD_ROW(r, i) if ((r) < ROWS) UPD(acc[r][i], x[r])
// W_AT(c, q): the texel of weight vector q < 4 of column group c at this k.
#define COL_UPD(u, i) { vec4 w0 = W_AT(col[i], 0u), w1 = W_AT(col[i], 1u), w2 = W_AT(col[i], 2u), \
                        w3 = W_AT(col[i], 3u); ALL_ROWS(UPD_ROW, i) }
// The product's k loop for invocation j: acc = x W over k < KN. Needs N, NT, KN, W_AT,
// X_AT(r) (x of row r at k) and UPD defined. Per k the x of every row first, then per
// column group its 4 weight texels and all rows' FMAs with them: the texels live for
// one group only (loading all 4 groups' first measured 6-8% slower: more spills).
#define BLOCK_PRODUCT                                      \
    vec4 acc[8][CG];                                       \
    ALL_ROWS(ZERO_ROW, 0)                                  \
    uint col[CG];                                          \
    COLS(COL_INDEX, 0)                                     \
    for (uint k = 0u; k < KN; k++) {                       \
        vec4 x[8];                                         \
        ALL_ROWS(LOAD_X, 0)                                \
        COLS(COL_UPD, 0)                                   \
    }
// Runs COL_SETUP, then STORE(r, c, v) for every row r < nrows, per owned group c < N
// (v = acc[r][i]).
#define STORE_ROW(r, i) if ((r) < ROWS && (r) < nrows) STORE(r, c, acc[r][i]);
#define STORE_COL(u, i) { uint c = j + (i) * NT; if (c < N) { COL_SETUP ALL_ROWS(STORE_ROW, i) } }
#define BLOCK_STORE COLS(STORE_COL, 0)
#define PRODUCT for (uint j = gl_LocalInvocationID.x; j < NT; j += WG) { BLOCK_PRODUCT BLOCK_STORE }

#ifndef BACKWARD
// ---------------------------------------------------------------- forward
layout(set = 0, binding = 2) uniform samplerBuffer tex_b_o;
layout(set = 0, binding = 3) uniform samplerBuffer tex_gain;
layout(set = 0, binding = 4) uniform samplerBuffer tex_bias;
layout(set = 0, binding = 5, rgba32f) uniform coherent imageBuffer img_u;
layout(set = 0, binding = 6, rgba32f) uniform coherent imageBuffer img_hs;
layout(set = 0, binding = 7, rgba32f) uniform coherent imageBuffer img_hp;
layout(std430, set = 0, binding = 8) writeonly buffer Mean { float mean_out[]; };
layout(std430, set = 0, binding = 9) writeonly buffer Rstd { float rstd_out[]; };

layout(push_constant) uniform Push {
    uint B, Bp, T;
    uint slab_u, slab_hs, slab_hp; // vec4 units
    float eps;
} pc;

void main()
{
    uint tid = gl_LocalInvocationID.x;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < pc.B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint nrows = min(ROWS, pc.B - b0), last = nrows - 1u;
        for (uint t = 0u; t < pc.T; t++) {
            // u_t = ReLU(u_t + h_t W_uh): column groups of 3h; x = h_t from hs slab t.
            uint ub = t * pc.slab_u + b0 * U4, xb = t * pc.slab_hs + b0 * H4;
#define N U4
#define NT ((U4 + CG - 1u) / CG)
#define KN H4
#define W_AT(c, q) WUH((4u * k + (q)) * U4 + (c))
#define X_AT(r) LOAD(img_hs, xb + (r) * H4 + k)
#define UPD UPD_AXPY
#define COL_SETUP
#define STORE(r, c, a) STORE_IMG(img_u, ub + (r) * U4 + c, max(a + LOAD(img_u, ub + (r) * U4 + c), vec4(0.0)))
            PRODUCT
#undef N
#undef NT
#undef KN
#undef W_AT
#undef X_AT
#undef UPD
#undef COL_SETUP
#undef STORE
            STAGE_BARRIER
            // hp_t = ReLU(u_t W_o + b_o): column groups of h, into hp (layer norm) or
            // straight into hs slab t+1.
            uint hb = (t + 1u) * pc.slab_hs + b0 * H4, pb = t * pc.slab_hp + b0 * H4;
#define N H4
#define NT ((H4 + CG - 1u) / CG)
#define KN U4
#define W_AT(c, q) WO((4u * k + (q)) * H4 + (c))
#define X_AT(r) LOAD(img_u, ub + (r) * U4 + k)
#define UPD UPD_AXPY
#define COL_SETUP vec4 bo = TEXEL(tex_b_o, c);
#define STORE(r, c, a) { vec4 v = max(a + bo, vec4(0.0)); \
                         if (LN != 0u) STORE_IMG(img_hp, pb + (r) * H4 + c, v); else STORE_IMG(img_hs, hb + (r) * H4 + c, v); }
            PRODUCT
#undef N
#undef NT
#undef KN
#undef W_AT
#undef X_AT
#undef UPD
#undef COL_SETUP
#undef STORE
            STAGE_BARRIER
            if (LN != 0u) {
                // h_{t+1} = LayerNorm(hp_t), one invocation per row, two passes over
                // the row for the variance (as layer_norm.comp).
                if (tid < nrows) {
                    uint rb = pb + tid * H4;
                    float s = 0.0;
                    for (uint c = 0u; c < H4; c++) s += HSUM(LOAD(img_hp, rb + c));
                    float mean = s / float(H), v = 0.0;
                    for (uint c = 0u; c < H4; c++) {
                        vec4 d = LOAD(img_hp, rb + c) - mean;
                        v += dot(d, d);
                    }
                    float rstd = inversesqrt(v / float(H) + pc.eps);
                    for (uint c = 0u; c < H4; c++)
                        STORE_IMG(img_hs, hb + tid * H4 + c,
                                  (LOAD(img_hp, rb + c) - mean) * rstd * TEXEL(tex_gain, c) + TEXEL(tex_bias, c));
                    mean_out[t * pc.Bp + b0 + tid] = mean;
                    rstd_out[t * pc.Bp + b0 + tid] = rstd;
                }
                STAGE_BARRIER
            }
        }
    }
}
#endif

#ifdef BACKWARD
// ---------------------------------------------------------------- backward
layout(set = 0, binding = 2) uniform samplerBuffer tex_gain;
layout(set = 0, binding = 3) uniform samplerBuffer tex_u;
layout(set = 0, binding = 4) uniform samplerBuffer tex_act;  // hp_t, or h_{t+1} without LN
layout(std430, set = 0, binding = 5) readonly buffer Mean { float mean_in[]; };
layout(std430, set = 0, binding = 6) readonly buffer Rstd { float rstd_in[]; };
layout(set = 0, binding = 7, rgba32f) uniform coherent imageBuffer img_dhs;
layout(set = 0, binding = 8, rgba32f) uniform coherent imageBuffer img_dhp;
layout(set = 0, binding = 9, rgba32f) uniform coherent imageBuffer img_du;

layout(push_constant) uniform Push {
    uint B, Bp, T;
    uint slab_u, slab_act, slab_dhs, slab_dhp, slab_du; // vec4 units
} pc;

void main()
{
    uint tid = gl_LocalInvocationID.x;
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < pc.B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint nrows = min(ROWS, pc.B - b0), last = nrows - 1u;
        for (uint t = pc.T; t-- > 0u;) {
            // dhp_t from g = dhs_{t+1}: the layer norm's input gradient (one invocation
            // per row) or g, through the output ReLU.
            uint ab = t * pc.slab_act + b0 * H4, pb = t * pc.slab_dhp + b0 * H4;
            uint g0 = (t + 1u) * pc.slab_dhs + b0 * H4;
            if (LN != 0u) {
                if (tid < nrows) {
                    uint ra = ab + tid * H4, rg = g0 + tid * H4;
                    float mean = mean_in[t * pc.Bp + b0 + tid], rstd = rstd_in[t * pc.Bp + b0 + tid];
                    vec2 s = vec2(0.0);
                    for (uint c = 0u; c < H4; c++) {
                        vec4 gg = LOAD(img_dhs, rg + c) * TEXEL(tex_gain, c);
                        vec4 xhat = (TEXEL(tex_act, ra + c) - mean) * rstd;
                        s += vec2(HSUM(gg), HSUM(gg * xhat));
                    }
                    vec2 c12 = s / float(H);
                    for (uint c = 0u; c < H4; c++) {
                        vec4 x = TEXEL(tex_act, ra + c);
                        vec4 xhat = (x - mean) * rstd;
                        vec4 gg = LOAD(img_dhs, rg + c) * TEXEL(tex_gain, c);
                        STORE_IMG(img_dhp, pb + tid * H4 + c, SELECT_POS(x, rstd * (gg - c12.x - xhat * c12.y)));
                    }
                }
            } else {
                for (uint i = tid; i < nrows * H4; i += WG)
                    STORE_IMG(img_dhp, pb + i, SELECT_POS(TEXEL(tex_act, ab + i), LOAD(img_dhs, g0 + i)));
            }
            STAGE_BARRIER
            // du_t = (dhp W_o^T) * (u_t > 0): column groups of 3h, dot products along
            // the rows 4c..4c+3 of W_o.
            uint ub = t * pc.slab_u + b0 * U4, db = t * pc.slab_du + b0 * U4;
#define N U4
#define NT ((U4 + CG - 1u) / CG)
#define KN H4
#define W_AT(c, q) WO((4u * (c) + (q)) * H4 + k)
#define X_AT(r) LOAD(img_dhp, pb + (r) * H4 + k)
#define UPD UPD_DOT
#define COL_SETUP
#define STORE(r, c, a) STORE_IMG(img_du, db + (r) * U4 + c, SELECT_POS(TEXEL(tex_u, ub + (r) * U4 + c), a))
            PRODUCT
#undef N
#undef NT
#undef KN
#undef W_AT
#undef X_AT
#undef UPD
#undef COL_SETUP
#undef STORE
            STAGE_BARRIER
            // dhs_t += du_t W_uh^T: column groups of h, dot products along the rows
            // 4c..4c+3 of W_uh; the next step's g.
            uint gb = t * pc.slab_dhs + b0 * H4;
#define N H4
#define NT ((H4 + CG - 1u) / CG)
#define KN U4
#define W_AT(c, q) WUH((4u * (c) + (q)) * U4 + k)
#define X_AT(r) LOAD(img_du, db + (r) * U4 + k)
#define UPD UPD_DOT
#define COL_SETUP
#define STORE(r, c, a) STORE_IMG(img_dhs, gb + (r) * H4 + c, LOAD(img_dhs, gb + (r) * H4 + c) + a)
            PRODUCT
#undef N
#undef NT
#undef KN
#undef W_AT
#undef X_AT
#undef UPD
#undef COL_SETUP
#undef STORE
            STAGE_BARRIER
        }
    }
}
#endif
