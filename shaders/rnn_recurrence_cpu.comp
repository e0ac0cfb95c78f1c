#version 450
// The baselines' recurrence over a whole sequence in one dispatch per layer and pass, for
// CPU devices (lavapipe): what rnn_layers.c otherwise records as one GEMM and one gate
// kernel per step (runtime/ops/rnn_recurrence.h has the contract). The design is that of
// enn_recurrence_cpu.comp: a workgroup carries ROWS batch rows through all T steps, with
// no shared memory; the rows' vectors the products read (h_{t-1} forward, dP_t or dQ_t
// backward) are read back from the output sequences they were just written to, bound as
// storage texel buffers, with image barriers between steps; the read-only operands are
// uniform texel buffers (a gather on llvmpipe, where a storage-buffer access is a loop
// over the lanes). Rows b >= B of the last workgroup read row B-1 and are never stored.
//
// Forward, per step t (P_t = x_t W + b on entry, in pre, or in hs slab t+1 for SimpleRNN):
//   LSTM  invocation j owns unit group j (4 units) of all 4 gates [i|f|c|o] of all rows:
//         acc = h_{t-1} U over those columns, then the gates in registers:
//         pre_t <- (i, f, g, o), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
//   GRU   the same with 3 gates [z|r|h]: hu_t = acc + b_rec, z, r from P_t + hu_t,
//         hh = tanh(P_h + r hu_h), h_t = z h_{t-1} + (1 - z) hh; pre_t <- (z, r, hh), and
//         hu_h kept (its z and r blocks are not stored: no backward reads them)
//   Simple  4 column groups j + i NT per invocation: h_t = tanh(P_t + h_{t-1} U)
// Backward, t = T..0 (no product at t = T): dh_t = dhs_t + dX_t U^T (X = dpre, or dhu for
// the GRU), stored into dhs slab t; then, by the same invocation for the same units, the
// gates' backward of step t-1 from dh_t (as rnn_gates.comp's backward kernels), which
// writes dX_{t-1} for the next product. One barrier per step. The GRU's direct path
// (dh_{t-1} += dh_t z_t) is added when step t-1 is reached, from dh_t as stored in slab t,
// rather than added into slab t-1 at step t: that read-modify-write of slab t-1 made the
// GRU's backward twice the LSTM's (45 against 23 ms/step on lavapipe, paper-mnist). Binding 0 is U^T there
// (the _transpose variant writes it first), so the products combine rows of it as the
// forward's combine rows of U: dot products along the rows of U measured 15-30% slower.
// The products that are not gate-major (backward, SimpleRNN) give each invocation
// GROUPS of the u / 4 column groups, fewer than 4 where 4 would leave invocations idle
// (64 units: 16 groups, 2 per invocation; 4 measured 2x the time).
//
// Needs units % 4 == 0 and ROWS <= 8. Measured on lavapipe (paper-mnist, B = 128, T = 28):
// 16 rows per workgroup no faster forward and 1.2-1.5x slower backward, 4 rows 1.8x
// slower; x read from a storage buffer (the same address in every lane) 1.6x slower than
// from the image.
//
//! variant rnn_recurrence_cpu_lstm_backward -DBACKWARD=1
//! variant rnn_recurrence_cpu_gru -DGRU=1
//! variant rnn_recurrence_cpu_gru_backward -DGRU=1 -DBACKWARD=1
//! variant rnn_recurrence_cpu_simple -DSIMPLE=1
//! variant rnn_recurrence_cpu_simple_backward -DSIMPLE=1 -DBACKWARD=1
//! variant rnn_recurrence_cpu_transpose -DTRANSPOSE=1
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint ROWS = 8;  // batch rows per workgroup, <= 8
layout(constant_id = 4) const uint UNITS = 4; // u, a multiple of 4
layout(constant_id = 5) const uint GROUPS = 4; // column groups per invocation (1, 2 or 4) of the
                                               // products that are not gate-major (backward, Simple)

#if GRU
#define GATES 3
#elif SIMPLE
#define GATES 1
#else
#define LSTM 1
#define GATES 4
#endif

const uint WG = gl_WorkGroupSize.x;
const uint U4 = UNITS / 4u;           // a u-wide row in vec4s
const uint W4 = uint(GATES) * U4;     // a (gates * u)-wide row in vec4s

#define TEXEL(name, i) texelFetch(name, int(i))
#define LOAD(img, i) imageLoad(img, int(i))
#define STORE_IMG(img, i, v) imageStore(img, int(i), v)
// Image writes of one step made visible to the next step's loads in other invocations.
#define STAGE_BARRIER memoryBarrierImage(); barrier();

layout(set = 0, binding = 0) uniform samplerBuffer tex_U; // U [u, gates * u]; backward: U^T
#define UW(i) TEXEL(tex_U, i)

#if !TRANSPOSE
layout(push_constant) uniform Push {
    uint B, T;
    uint slab_u, slab_w; // vec4s from one step to the next: u-wide and (gates * u)-wide sequences
} pc;
#endif

// tanh and sigmoid as rnn_gates.comp computes them: no overflow for large |x|, no
// cancellation of 1 - exp(-2|x|) near 0 (odd Taylor series to x^7 for |x| < 0.1).
vec4 stable_tanh(vec4 v)
{
    vec4 s = abs(v), s2 = s * s;
    vec4 small = s * (1.0 + s2 * (-1.0 / 3.0 + s2 * (2.0 / 15.0 + s2 * (-17.0 / 315.0))));
    vec4 e = exp(-2.0 * s);
    vec4 t = mix((1.0 - e) / (1.0 + e), small, lessThan(s, vec4(0.1)));
    return mix(t, -t, lessThan(v, vec4(0.0)));
}

// exp of a non-positive number only.
vec4 stable_sigmoid(vec4 v)
{
    vec4 e = exp(-abs(v));
    return mix(vec4(1.0), e, lessThan(v, vec4(0.0))) / (1.0 + e);
}

// ---------------------------------------------------------------- register blocks
// As in enn_recurrence_cpu.comp: the block is spelled out by macros (NIR does not
// always unroll, and a loop-indexed register array becomes scratch memory). Invocation
// j owns CG column groups col[i] of all ROWS rows: per k it fetches 4 CG weight texels,
// each serving every row, and ROWS vec4s of x, each serving 4 CG FMAs.
#if GRU && !BACKWARD
#define CG 3
#define COLS(F, a) F(a, 0) F(a, 1) F(a, 2)
#else
#define CG 4
#define COLS(F, a) F(a, 0) F(a, 1) F(a, 2) F(a, 3)
#endif
#define ALL_ROWS(F, a) F(0, a) F(1, a) F(2, a) F(3, a) F(4, a) F(5, a) F(6, a) F(7, a)
#define UPD_AXPY(a, xv) a = fma(vec4(xv.w), w3, fma(vec4(xv.z), w2, fma(vec4(xv.y), w1, fma(vec4(xv.x), w0, a))));
#define ZERO_ACC(r, i) acc[r][i] = vec4(0.0);
#define ZERO_ROW(r, u) COLS(ZERO_ACC, r)
#define COL_INDEX(u, i) if (USE_COL(i)) col[i] = COL(j, i);
#define LOAD_X(r, u) if ((r) < ROWS) x[r] = X_AT(min(r, last));
#define UPD_ROW(r, i) if ((r) < ROWS) UPD(acc[r][i], x[r])
#define COL_UPD(u, i) if (USE_COL(i)) { vec4 w0 = W_AT(col[i], 0u), w1 = W_AT(col[i], 1u), w2 = W_AT(col[i], 2u), \
                        w3 = W_AT(col[i], 3u); ALL_ROWS(UPD_ROW, i) }
// acc[r][i] = sum over k < KN of the product; needs COL(j, i), USE_COL(i), KN, W_AT(c, q)
// (the texel of weight vector q < 4 of column group c at this k), X_AT(r) and UPD.
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
#define ROW_OK(r) ((r) < ROWS && (r) < nrows)

#if TRANSPOSE
// ---------------------------------------------------------------- U^T for the backward
// Invocation (k, c) moves the 4 x 4 block of rows 4k.. and column group c of tex_U
// (U [u, width]) to rows 4c.. and column group k of U^T [width, u]: the backward's
// products then combine rows of U^T as the forward's combine rows of U.
layout(set = 0, binding = 1, rgba32f) uniform writeonly imageBuffer img_Ut;
layout(push_constant) uniform TransposePush { uint width4; } tp;

void main()
{
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= U4 * tp.width4) return;
    uint k = i / tp.width4, c = i % tp.width4;
    vec4 a0 = UW((4u * k) * tp.width4 + c), a1 = UW((4u * k + 1u) * tp.width4 + c);
    vec4 a2 = UW((4u * k + 2u) * tp.width4 + c), a3 = UW((4u * k + 3u) * tp.width4 + c);
    STORE_IMG(img_Ut, (4u * c) * U4 + k, vec4(a0.x, a1.x, a2.x, a3.x));
    STORE_IMG(img_Ut, (4u * c + 1u) * U4 + k, vec4(a0.y, a1.y, a2.y, a3.y));
    STORE_IMG(img_Ut, (4u * c + 2u) * U4 + k, vec4(a0.z, a1.z, a2.z, a3.z));
    STORE_IMG(img_Ut, (4u * c + 3u) * U4 + k, vec4(a0.w, a1.w, a2.w, a3.w));
}
#elif !defined(BACKWARD)
// ---------------------------------------------------------------- forward
layout(set = 0, binding = 1, rgba32f) uniform coherent imageBuffer img_hs;  // [T+1, Bp, u]
#if !SIMPLE
layout(set = 0, binding = 2, rgba32f) uniform coherent imageBuffer img_pre; // [T, Bp, gates * u]
#endif
#if LSTM
layout(set = 0, binding = 3, rgba32f) uniform coherent imageBuffer img_cs;  // [T+1, Bp, u]
#elif GRU
layout(set = 0, binding = 3, rgba32f) uniform coherent imageBuffer img_hu;  // [T, Bp, 3u]
layout(set = 0, binding = 4) uniform samplerBuffer tex_b_rec;              // [3u]
#endif

#if SIMPLE
// GROUPS column groups per invocation, NT apart (clamped to the last, never stored past it).
#define NT ((U4 + GROUPS - 1u) / GROUPS)
#define COL(j, i) min((j) + (i) * NT, U4 - 1u)
#define USE_COL(i) ((i) < GROUPS)
#define SIMPLE_ROW(r, i) if (ROW_OK(r)) { uint o = ob + (r) * U4 + c; \
                             STORE_IMG(img_hs, o, stable_tanh(acc[r][i] + LOAD(img_hs, o))); }
#define SIMPLE_COL(u, i) { uint c = j + (i) * NT; if (USE_COL(i) && c < U4) { ALL_ROWS(SIMPLE_ROW, i) } }
#define EPILOGUE COLS(SIMPLE_COL, 0)
#else
// Unit group j of every gate: columns j, j + U4, ...
#define NT U4
#define COL(j, i) ((j) + (i) * U4)
#define USE_COL(i) true
#if LSTM
#define GATE_ROW(r, u) if (ROW_OK(r)) {                                          \
        uint p = pb + (r) * W4 + j, q = (r) * U4 + j;                          \
        vec4 gi = stable_sigmoid(acc[r][0] + LOAD(img_pre, p));                \
        vec4 gf = stable_sigmoid(acc[r][1] + LOAD(img_pre, p + U4));           \
        vec4 gg = stable_tanh(acc[r][2] + LOAD(img_pre, p + 2u * U4));         \
        vec4 go = stable_sigmoid(acc[r][3] + LOAD(img_pre, p + 3u * U4));      \
        vec4 cv = gf * LOAD(img_cs, hb + q) + gi * gg;                         \
        STORE_IMG(img_cs, ob + q, cv);                                         \
        STORE_IMG(img_hs, ob + q, go * stable_tanh(cv));                       \
        STORE_IMG(img_pre, p, gi);                                             \
        STORE_IMG(img_pre, p + U4, gf);                                        \
        STORE_IMG(img_pre, p + 2u * U4, gg);                                   \
        STORE_IMG(img_pre, p + 3u * U4, go); }
#else
#define GATE_ROW(r, u) if (ROW_OK(r)) {                                          \
        uint p = pb + (r) * W4 + j, q = (r) * U4 + j;                          \
        vec4 qz = acc[r][0] + bz, qr = acc[r][1] + br, qh = acc[r][2] + bh;    \
        STORE_IMG(img_hu, p + 2u * U4, qh);                                    \
        vec4 z = stable_sigmoid(LOAD(img_pre, p) + qz);                        \
        vec4 rr = stable_sigmoid(LOAD(img_pre, p + U4) + qr);                  \
        vec4 hh = stable_tanh(LOAD(img_pre, p + 2u * U4) + rr * qh);           \
        STORE_IMG(img_hs, ob + q, z * LOAD(img_hs, hb + q) + (1.0 - z) * hh);  \
        STORE_IMG(img_pre, p, z);                                              \
        STORE_IMG(img_pre, p + U4, rr);                                        \
        STORE_IMG(img_pre, p + 2u * U4, hh); }
#endif
#if GRU
#define EPILOGUE vec4 bz = TEXEL(tex_b_rec, j), br = TEXEL(tex_b_rec, j + U4), bh = TEXEL(tex_b_rec, j + 2u * U4); \
                 ALL_ROWS(GATE_ROW, 0)
#else
#define EPILOGUE ALL_ROWS(GATE_ROW, 0)
#endif
#endif

// x = h_{t-1}: rows of hs slab t; forward products combine the rows of U.
#define KN U4
#define W_AT(c, q) UW((4u * k + (q)) * W4 + (c))
#define X_AT(r) LOAD(img_hs, hb + (r) * U4 + k)
#define UPD UPD_AXPY

void main()
{
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < pc.B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint nrows = min(ROWS, pc.B - b0), last = nrows - 1u;
        for (uint t = 0u; t < pc.T; t++) {
            // hb: these rows of h_{t-1} (and c_{t-1}), ob: of h_t (c_t), pb: of P_t.
            uint hb = t * pc.slab_u + b0 * U4, ob = hb + pc.slab_u, pb = t * pc.slab_w + b0 * W4;
            for (uint j = gl_LocalInvocationID.x; j < NT; j += WG) {
                BLOCK_PRODUCT
                EPILOGUE
            }
            STAGE_BARRIER
        }
    }
}
#endif

#if BACKWARD
// ---------------------------------------------------------------- backward
layout(set = 0, binding = 1, rgba32f) uniform coherent imageBuffer img_dhs;  // [T+1, Bp, u]
layout(set = 0, binding = 2, rgba32f) uniform coherent imageBuffer img_dpre; // [T, Bp, gates * u]
#if LSTM
layout(set = 0, binding = 3) uniform samplerBuffer tex_act;                  // pre: (i, f, g, o)
layout(set = 0, binding = 4) uniform samplerBuffer tex_cs;                   // [T+1, Bp, u]
layout(set = 0, binding = 5, rgba32f) uniform coherent imageBuffer img_dc;   // [Bp, u]
#define img_X img_dpre
#elif GRU
layout(set = 0, binding = 3) uniform samplerBuffer tex_hs;                   // [T+1, Bp, u]
layout(set = 0, binding = 4) uniform samplerBuffer tex_act;                  // pre: (z, r, hh)
layout(set = 0, binding = 5) uniform samplerBuffer tex_hu;                   // [T, Bp, 3u]
layout(set = 0, binding = 6, rgba32f) uniform coherent imageBuffer img_dhu;  // [T, Bp, 3u]
#define img_X img_dhu
#else
layout(set = 0, binding = 3) uniform samplerBuffer tex_hs;                   // [T+1, Bp, u]
#define img_X img_dpre
#endif

// Output unit groups: GROUPS per invocation, NT apart; binding 0 is U^T [gates u, u]
// (rnn_recurrence_cpu_transpose), whose rows 4k.. the products combine (dX U^T).
#define NT ((U4 + GROUPS - 1u) / GROUPS)
#define COL(j, i) min((j) + (i) * NT, U4 - 1u)
#define USE_COL(i) ((i) < GROUPS)
#define KN kn
#define W_AT(c, q) UW((4u * k + (q)) * U4 + (c))
#define X_AT(r) LOAD(img_X, xb + (r) * W4 + k)
#define UPD UPD_AXPY

// The gates' backward of step t-1 for row r, unit group c, from dh = dL/dh_t (q: the
// row's index in the u-wide slab t, a: in the wide step t-1, e: in the u-wide slab t-1).
#if LSTM
#define GATES_BACKWARD(r, c, dh) {                                                  \
        uint a = ab + (r) * W4 + (c), e = q - pc.slab_u, d = (b0 + (r)) * U4 + (c);  \
        vec4 gi = TEXEL(tex_act, a), gf = TEXEL(tex_act, a + U4);                    \
        vec4 gg = TEXEL(tex_act, a + 2u * U4), go = TEXEL(tex_act, a + 3u * U4);     \
        vec4 tc = stable_tanh(TEXEL(tex_cs, q));                                     \
        vec4 dct = dh * go * ((1.0 - tc) * (1.0 + tc));                              \
        if (t < pc.T) dct += LOAD(img_dc, d);                                        \
        STORE_IMG(img_dpre, a, dct * gg * gi * (1.0 - gi));                          \
        STORE_IMG(img_dpre, a + U4, dct * TEXEL(tex_cs, e) * gf * (1.0 - gf));       \
        STORE_IMG(img_dpre, a + 2u * U4, dct * gi * ((1.0 - gg) * (1.0 + gg)));      \
        STORE_IMG(img_dpre, a + 3u * U4, dh * tc * go * (1.0 - go));                 \
        STORE_IMG(img_dc, d, dct * gf); }
#elif GRU
#define GATES_BACKWARD(r, c, dh) {                                                  \
        uint a = ab + (r) * W4 + (c), e = q - pc.slab_u;                             \
        vec4 z = TEXEL(tex_act, a), rr = TEXEL(tex_act, a + U4);                     \
        vec4 hh = TEXEL(tex_act, a + 2u * U4);                                       \
        vec4 av = dh * (1.0 - z) * ((1.0 - hh) * (1.0 + hh));                        \
        vec4 dz = dh * (TEXEL(tex_hs, e) - hh) * z * (1.0 - z);                      \
        vec4 dr = av * TEXEL(tex_hu, a + 2u * U4) * rr * (1.0 - rr);                 \
        STORE_IMG(img_dpre, a, dz);                                                  \
        STORE_IMG(img_dpre, a + U4, dr);                                             \
        STORE_IMG(img_dpre, a + 2u * U4, av);                                        \
        STORE_IMG(img_dhu, a, dz);                                                   \
        STORE_IMG(img_dhu, a + U4, dr);                                              \
        STORE_IMG(img_dhu, a + 2u * U4, av * rr); }
#else
#define GATES_BACKWARD(r, c, dh) {                                                  \
        vec4 hv = TEXEL(tex_hs, q);                                                  \
        STORE_IMG(img_dpre, ab + (r) * W4 + (c), dh * ((1.0 - hv) * (1.0 + hv))); }
#endif

// GRU: h_{t+1} = z h_t + ..., so dL/dh_t also has dh_{t+1} z_{t+1}, from slab t+1 of dhs
// (stored by this invocation one step ago) and the gates of step t.
#if GRU
#define CARRY(r, c) if (t < pc.T) dh += LOAD(img_dhs, q + pc.slab_u) * TEXEL(tex_act, xb + (r) * W4 + (c));
#else
#define CARRY(r, c)
#endif

#define BACK_ROW(r, i) if (ROW_OK(r)) {                                              \
        uint q = hb + (r) * U4 + c;                                                  \
        vec4 dh = LOAD(img_dhs, q) + acc[r][i];                                      \
        CARRY(r, c)                                                                  \
        if (t < pc.T) STORE_IMG(img_dhs, q, dh);                                     \
        if (t > 0u) GATES_BACKWARD(r, c, dh) }
#define BACK_COL(u, i) { uint c = j + (i) * NT; if (USE_COL(i) && c < U4) { ALL_ROWS(BACK_ROW, i) } }

void main()
{
    for (uint b0 = gl_WorkGroupID.x * ROWS; b0 < pc.B; b0 += gl_NumWorkGroups.x * ROWS) {
        uint nrows = min(ROWS, pc.B - b0), last = nrows - 1u;
        for (uint t = pc.T + 1u; t-- > 0u;) {
            // hb: these rows in u-wide slab t; xb: in dX_t (t < T); ab: in the wide step t-1.
            uint hb = t * pc.slab_u + b0 * U4;
            uint xb = t * pc.slab_w + b0 * W4, ab = xb - pc.slab_w;
            uint kn = t < pc.T ? W4 : 0u;
            for (uint j = gl_LocalInvocationID.x; j < NT; j += WG) {
                BLOCK_PRODUCT
                COLS(BACK_COL, 0)
            }
            STAGE_BARRIER
        }
    }
}
#endif
