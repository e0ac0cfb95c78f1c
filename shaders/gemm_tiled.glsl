// The gemm_tiled_<RM><RN> variants of gemm.comp (included there): fp32 shared-memory tiles
// with a compile-time register block of RM x RN outputs per invocation (RM, RN = 4 or 8).
//
// A workgroup of WX x WY invocations (16 x 16 from the launcher) computes a BM x BN tile of C,
// BM = WY * RM, BN = WX * RN. Invocation (tx, ty) owns RM / 4 groups of 4 consecutive rows,
// g * 4 WY + 4 ty .. +3, and RN / 4 groups of 4 consecutive columns, h * 4 WX + 4 tx .. +3:
// with op(A) staged transposed ([k][m]) and op(B) as [k][n], each group is one vec4 read from
// shared memory per k, and the 16 invocations of a row read 16 consecutive vec4s (no bank
// conflicts; the other operand is a broadcast).
// Per step of BK along K:
//   - two stages of shared tiles: while the workgroup multiplies stage s, every invocation
//     already holds its part of the next step's tiles in registers (loaded before the
//     multiply, so the global loads are in flight during it) and writes them to stage s ^ 1
//     afterwards: one barrier per step;
//   - global loads are 16 bytes (4 floats along the stored rows) where the rows are aligned
//     and the 4 floats lie inside the matrix, else 4 guarded scalar loads (zeros outside),
//     so any M, N, K, ld and batch offset work.
// Accumulators (c<g><i><h>: row group g, row i of it, column group h, as a vec4 of 4
// columns), operand vectors and prefetch registers are named variables spelled out by the
// macros below for the compile-time RM x RN, never arrays indexed by loop counters: the
// NVIDIA driver (580, H100) kept such arrays in memory in the cooperative-matrix kernel
// (gemm_coopmat.glsl), and TM, TN as specialization constants hide the sizes from glslang.
// Epilogue: 4 consecutive columns per vec4 store where C's row is aligned and the 4 lie inside
// the matrix, else element by element (store_c).
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 7) const uint BK = 8;      // a multiple of 4
// pc.flags bit 3: lda and stride_a are multiples of 4; bit 4: ldb and stride_b (push
// constants, not specialization constants: fewer pipelines to compile)
const uint FLAG_VEC_A = 8u, FLAG_VEC_B = 16u;
const uint WX = gl_WorkGroupSize.x, WY = gl_WorkGroupSize.y, THREADS = WX * WY;
const uint BM = WY * RM, BN = WX * RN, BM4 = BM / 4u, BN4 = BN / 4u;

// The staged region of each stored matrix: plain A is BM rows of BK floats, transposed A BK
// rows of BM; plain B BK rows of BN, transposed B BN rows of BK. Loaded 4 floats per chunk;
// chunk c of a region is row c / (LEN / 4), floats 4 (c % (LEN / 4)) .. +3.
const uint A_LEN = TRANS_A != 0u ? BM : BK, A_CHUNKS = BM * BK / 4u;
const uint B_LEN = TRANS_B != 0u ? BK : BN, B_CHUNKS = BN * BK / 4u;
const uint A_PER = (A_CHUNKS + THREADS - 1u) / THREADS, B_PER = (B_CHUNKS + THREADS - 1u) / THREADS;  // <= 4

shared vec4 sa[2u * BK * BM4];  // stage s, op(A)[k][m] at sa[s BK BM4 + k BM4 + m / 4][m % 4]
shared vec4 sb[2u * BK * BN4];  // stage s, op(B)[k][n] likewise

layout(std430, set = 0, binding = 0) readonly buffer BufA4 { vec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB4 { vec4 b4[]; };
layout(std430, set = 0, binding = 2) buffer BufC4 { vec4 c4[]; };

// Four floats of a stored matrix (rows x cols, leading dimension ld, from base) at row r,
// columns col .. col+3, zeros outside; `vec`: ld and base are multiples of 4.
vec4 load4(bool is_a, uint base, uint ld, uint rows, uint cols, uint r, uint col, bool vec)
{
    if (r >= rows) return vec4(0.0);
    uint i = base + r * ld + col;
    if (vec && col + 4u <= cols) return is_a ? a4[i / 4u] : b4[i / 4u];
    vec4 v = vec4(0.0);
    if (col < cols) v.x = is_a ? a[i] : b[i];
    if (col + 1u < cols) v.y = is_a ? a[i + 1u] : b[i + 1u];
    if (col + 2u < cols) v.z = is_a ? a[i + 2u] : b[i + 2u];
    if (col + 3u < cols) v.w = is_a ? a[i + 3u] : b[i + 3u];
    return v;
}

// Chunk c of the A region into stage `o` (a word offset): transposed A's chunks already run
// along m; plain A's run along k and are scattered into 4 rows of the [k][m] tile.
void put_a(uint o, uint c, vec4 v)
{
    uint r = c / (A_LEN / 4u), q = c % (A_LEN / 4u);
    if (TRANS_A != 0u) { sa[o + r * BM4 + q] = v; return; }
    uint w = o + 4u * q * BM4 + r / 4u, e = r % 4u;
    sa[w][e] = v.x; sa[w + BM4][e] = v.y; sa[w + 2u * BM4][e] = v.z; sa[w + 3u * BM4][e] = v.w;
}
void put_b(uint o, uint c, vec4 v)
{
    uint r = c / (B_LEN / 4u), q = c % (B_LEN / 4u);
    if (TRANS_B == 0u) { sb[o + r * BN4 + q] = v; return; }
    uint w = o + 4u * q * BN4 + r / 4u, e = r % 4u;
    sb[w][e] = v.x; sb[w + BN4][e] = v.y; sb[w + 2u * BN4][e] = v.z; sb[w + 3u * BN4][e] = v.w;
}

vec4 activate4(vec4 v, uint act)
{
    if (act == ACT_RELU) return max(v, vec4(0.0));
    if (act == ACT_TANH) return tanh(clamp(v, vec4(-15.0), vec4(15.0)));  // as store_c
    if (act == ACT_SIGMOID) return vec4(1.0) / (vec4(1.0) + exp(-v));
    return v;
}

// C[m][n .. n+3] through the epilogue; one vec4 store where aligned and inside.
void store4(uint base_c, uint m, uint n, vec4 acc)
{
    if (m >= pc.M || n >= pc.N) return;
    uint i = base_c + m * pc.ldc + n;
    if (n + 4u <= pc.N && i % 4u == 0u) {
        vec4 v = pc.alpha * acc;
        if (pc.beta != 0.0) v += pc.beta * c4[i / 4u];   // beta = 0: C may hold NaN garbage
        if ((pc.flags & 1u) != 0u) v += vec4(bias[n], bias[n + 1u], bias[n + 2u], bias[n + 3u]);
        c4[i / 4u] = activate4(v, (pc.flags >> 1) & 3u);
        return;
    }
    // A loop, not 4 copies of store_c: the edge path is rare, and its code (tanh, exp) is
    // what lavapipe spends its compile time on.
    [[dont_unroll]] for (uint j = 0u; j < 4u && n + j < pc.N; j++) store_c(base_c, m, n + j, acc[j]);
}

// ---- the register block, spelled out
#if RM == 8
#define EACH_G(X) X(0) X(1)
#else
#define EACH_G(X) X(0)
#endif
#if RN == 8
#define EACH_H(X) X(0) X(1)
#else
#define EACH_H(X) X(0)
#endif
#if RM == 8 && RN == 8
#define EACH_GH(X) X(0, 0) X(0, 1) X(1, 0) X(1, 1)
#elif RM == 8
#define EACH_GH(X) X(0, 0) X(1, 0)
#elif RN == 8
#define EACH_GH(X) X(0, 0) X(0, 1)
#else
#define EACH_GH(X) X(0, 0)
#endif
#define EACH_P(X) X(0) X(1) X(2) X(3)

#define DECL_ACC(g, h) vec4 c##g##0##h = vec4(0.0), c##g##1##h = vec4(0.0), c##g##2##h = vec4(0.0), \
    c##g##3##h = vec4(0.0);
#define READ_AV(g) vec4 av##g = sa[oa + kk * BM4 + (g) * WY + ty];
#define READ_BV(h) vec4 bv##h = sb[ob + kk * BN4 + (h) * WX + tx];
#define FMA_GH(g, h) c##g##0##h = fma(vec4(av##g.x), bv##h, c##g##0##h); \
    c##g##1##h = fma(vec4(av##g.y), bv##h, c##g##1##h); \
    c##g##2##h = fma(vec4(av##g.z), bv##h, c##g##2##h); \
    c##g##3##h = fma(vec4(av##g.w), bv##h, c##g##3##h);
// Rows i of a group in a loop (one copy of store4's code per group, not four).
#define STORE_GH(g, h) { uint m = m_tile + (g) * 4u * WY + 4u * ty, n = n_tile + (h) * 4u * WX + 4u * tx; \
    [[dont_unroll]] for (uint i = 0u; i < 4u; i++) \
        store4(base_c, m + i, n, i == 0u ? c##g##0##h : i == 1u ? c##g##1##h : i == 2u ? c##g##2##h : c##g##3##h); }

// This invocation's chunks p < A_PER (B_PER) of the regions at step k: chunk tid + THREADS p.
#define FETCH_A(p) if ((p) < A_PER && tid + THREADS * (p) < A_CHUNKS) { uint c = tid + THREADS * (p); \
    ra##p = load4(true, base_a, pc.lda, a_rows, a_cols, (TRANS_A != 0u ? k : m_tile) + c / (A_LEN / 4u), \
                  (TRANS_A != 0u ? m_tile : k) + 4u * (c % (A_LEN / 4u)), (pc.flags & FLAG_VEC_A) != 0u); }
#define FETCH_B(p) if ((p) < B_PER && tid + THREADS * (p) < B_CHUNKS) { uint c = tid + THREADS * (p); \
    rb##p = load4(false, base_b, pc.ldb, b_rows, b_cols, (TRANS_B != 0u ? n_tile : k) + c / (B_LEN / 4u), \
                  (TRANS_B != 0u ? k : n_tile) + 4u * (c % (B_LEN / 4u)), (pc.flags & FLAG_VEC_B) != 0u); }
#define PUT_A(p) if ((p) < A_PER && tid + THREADS * (p) < A_CHUNKS) put_a(s * (BK * BM4), tid + THREADS * (p), ra##p);
#define PUT_B(p) if ((p) < B_PER && tid + THREADS * (p) < B_CHUNKS) put_b(s * (BK * BN4), tid + THREADS * (p), rb##p);

void main()
{
    uint tile_m, tile_n;
    // Whole workgroups leave together, so the barriers below stay uniform.
    if (!tile_coords(tile_m, tile_n)) return;
    uint batch = pc.batch_base + gl_WorkGroupID.z;
    uint base_a = batch * pc.stride_a, base_b = batch * pc.stride_b, base_c = batch * pc.stride_c;
    uint m_tile = tile_m * BM, n_tile = tile_n * BN;
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y, tid = gl_LocalInvocationIndex;
    uint a_rows = TRANS_A != 0u ? pc.K : pc.M, a_cols = TRANS_A != 0u ? pc.M : pc.K;
    uint b_rows = TRANS_B != 0u ? pc.N : pc.K, b_cols = TRANS_B != 0u ? pc.K : pc.N;

    EACH_GH(DECL_ACC)
    vec4 ra0 = vec4(0.0), ra1 = vec4(0.0), ra2 = vec4(0.0), ra3 = vec4(0.0);
    vec4 rb0 = vec4(0.0), rb1 = vec4(0.0), rb2 = vec4(0.0), rb3 = vec4(0.0);

    uint s = 0u, k = 0u;
    EACH_P(FETCH_A) EACH_P(FETCH_B)
    EACH_P(PUT_A) EACH_P(PUT_B)
    barrier();
    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        bool more = k0 + BK < pc.K;
        k = k0 + BK;
        if (more) { EACH_P(FETCH_A) EACH_P(FETCH_B) }
        uint oa = s * (BK * BM4), ob = s * (BK * BN4);
        for (uint kk = 0u; kk < BK; kk++) {
            EACH_G(READ_AV)
            EACH_H(READ_BV)
            EACH_GH(FMA_GH)
        }
        s ^= 1u;
        if (more) { EACH_P(PUT_A) EACH_P(PUT_B) }
        barrier();
    }
    EACH_GH(STORE_GH)
}
