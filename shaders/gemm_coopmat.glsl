// The gemm_coopmat variant of gemm.comp (included there): fp16 op(A) op(B) on NV cooperative
// matrices (tensor cores) into fp32 accumulators, then the common epilogue.
//
// A workgroup of SG_M x SG_N subgroups computes a BM x BN tile of C; subgroup s owns
// rows (s / SG_N) * WM .. + WM and columns (s % SG_N) * WN .. + WN as TM x TN
// accumulators of the device's CM x CN x CK shape. Per step of BK along K:
//   - A and B are staged in shared memory exactly as they lie in memory (row-major tiles
//     of the stored matrices, whatever the transposes), 16 bytes (8 halves) per load and
//     per shared store; a transpose only flips the fragment loads to column-major.
//   - Two stages: while the subgroups multiply stage s, every invocation already holds
//     its part of the next step's tiles in registers (loaded before the multiply, so the
//     global loads are in flight during it) and writes them to stage s ^ 1 afterwards:
//     one barrier per step.
//   - Each A fragment is loaded once per CK and used for TN products, each B
//     fragment for TM.
// Rows of the staged tiles are padded by 8 halves (16 bytes), so the 8 rows a fragment
// load reads at once fall on distinct shared-memory banks for every tile width used.
// Edges: a 16-byte chunk that is inside the matrix and aligned is one load; any other
// is 8 guarded scalar loads (zeros outside), so any M, N, K, ld and batch offset work.
// Accumulators and fragments are named variables (acc01, fa1, ...) spelled out by the
// macros below for the variant's compile-time TM x TN, never arrays: the NVIDIA driver
// (580, H100) kept arrays of cooperative matrices indexed by loop counters in memory,
// which held the multiply to ~34 TFLOP/s whatever the tile shape.
// Epilogue: interior tiles without bias or activation store the accumulators straight
// to C (alpha and beta applied on the matrices); the others go through a per-subgroup
// fp32 scratch (aliasing the staging memory) to store_c, element by element.
layout(constant_id = 5) const uint CM = 16;
layout(constant_id = 6) const uint CN = 16;
layout(constant_id = 7) const uint CK = 16;
layout(constant_id = 8) const uint SG_SIZE = 32;
layout(constant_id = 9) const uint SG_M = 2;      // subgroups along M
layout(constant_id = 10) const uint SG_N = 2;     // subgroups along N
layout(constant_id = 11) const uint BK = 32;
// TM x TN accumulators per subgroup: compile-time, one shader variant each (gemm.comp).
const uint WM = TM * CM, WN = TN * CN;
const uint BM = SG_M * WM, BN = SG_N * WN;
const uint THREADS = SG_M * SG_N * SG_SIZE;
const uint PAD = 8u;  // halves; runtime/ops/gemm.c sizes the shared memory with the same value

// Staged tiles, as stored: plain A is BM rows of BK halves, transposed A BK rows of BM;
// plain B is BK rows of BN, transposed B BN rows of BK. Lengths in halves, then in uvec4s.
const uint A_ROWS = TRANS_A * BK + (1u - TRANS_A) * BM, A_LEN = TRANS_A * BM + (1u - TRANS_A) * BK;
const uint B_ROWS = TRANS_B * BN + (1u - TRANS_B) * BK, B_LEN = TRANS_B * BK + (1u - TRANS_B) * BN;
const uint A_LD = (A_LEN + PAD) / 8u, B_LD = (B_LEN + PAD) / 8u;    // uvec4s per staged row
const uint A_WORDS = A_ROWS * A_LD, B_WORDS = B_ROWS * B_LD;
const uint STAGE_WORDS = A_WORDS + B_WORDS;
const uint A_CHUNKS = A_ROWS * A_LEN / 8u, B_CHUNKS = B_ROWS * B_LEN / 8u;  // 16-byte loads per step
const uint A_PER = (A_CHUNKS + THREADS - 1u) / THREADS, B_PER = (B_CHUNKS + THREADS - 1u) / THREADS;
// Two stages; the epilogue's scratch (SG_M * SG_N * CM * CN floats) reuses the same words
// (the launcher checks that it fits).
shared uvec4 smem[2u * STAGE_WORDS];

layout(std430, set = 0, binding = 0) readonly buffer BufA8 { uvec4 a8[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB8 { uvec4 b8[]; };

// Eight halves of a stored matrix (rows x cols, leading dimension ld, from base) at
// row r, columns col .. col+7, zeros outside; `vec`: ld and base are multiples of 8.
uvec4 load8(bool is_a, uint base, uint ld, uint rows, uint cols, uint r, uint col, bool vec)
{
    if (r >= rows) return uvec4(0u);
    uint i = base + r * ld + col;
    if (vec && col + 8u <= cols) return is_a ? a8[i / 8u] : b8[i / 8u];
    float16_t h[8];
    for (uint e = 0u; e < 8u; e++) {
        float16_t v = float16_t(0.0);
        if (col + e < cols) v = is_a ? a[i + e] : b[i + e];
        h[e] = v;
    }
    return uvec4(packFloat2x16(f16vec2(h[0], h[1])), packFloat2x16(f16vec2(h[2], h[3])),
                 packFloat2x16(f16vec2(h[4], h[5])), packFloat2x16(f16vec2(h[6], h[7])));
}

// This invocation's chunks of the next step's tiles, named (not an array) for the same
// reason as the accumulators: chunk p is c = tid + THREADS * p, row c / (LEN / 8),
// columns 8 * (c % (LEN / 8)) .. +7 of the staged tile; at most 4 per invocation
// (the launcher checks).
uvec4 ra0, ra1, ra2, ra3, rb0, rb1, rb2, rb3;
#define EACH_P(X) X(0) X(1) X(2) X(3)
#define FETCH_A(p) if (p < A_PER && tid + THREADS * p < A_CHUNKS) { uint c = tid + THREADS * p; \
    ra##p = load8(true, base_a, pc.lda, a_rows, a_cols, a_r0 + c / (A_LEN / 8u), a_c0 + 8u * (c % (A_LEN / 8u)), vec_a); }
#define FETCH_B(p) if (p < B_PER && tid + THREADS * p < B_CHUNKS) { uint c = tid + THREADS * p; \
    rb##p = load8(false, base_b, pc.ldb, b_rows, b_cols, b_r0 + c / (B_LEN / 8u), b_c0 + 8u * (c % (B_LEN / 8u)), vec_b); }
#define PUT_A(p) if (p < A_PER && tid + THREADS * p < A_CHUNKS) { uint c = tid + THREADS * p; \
    smem[s0 + c / (A_LEN / 8u) * A_LD + c % (A_LEN / 8u)] = ra##p; }
#define PUT_B(p) if (p < B_PER && tid + THREADS * p < B_CHUNKS) { uint c = tid + THREADS * p; \
    smem[s0 + A_WORDS + c / (B_LEN / 8u) * B_LD + c % (B_LEN / 8u)] = rb##p; }

void fetch(uint base_a, uint base_b, uint m_tile, uint n_tile, uint k0, uint tid, bool vec_a, bool vec_b)
{
    uint a_rows = TRANS_A != 0u ? pc.K : pc.M, a_cols = TRANS_A != 0u ? pc.M : pc.K;
    uint a_r0 = TRANS_A != 0u ? k0 : m_tile, a_c0 = TRANS_A != 0u ? m_tile : k0;
    EACH_P(FETCH_A)
    uint b_rows = TRANS_B != 0u ? pc.N : pc.K, b_cols = TRANS_B != 0u ? pc.K : pc.N;
    uint b_r0 = TRANS_B != 0u ? n_tile : k0, b_c0 = TRANS_B != 0u ? k0 : n_tile;
    EACH_P(FETCH_B)
}

void put(uint stage, uint tid)
{
    uint s0 = stage * STAGE_WORDS;
    EACH_P(PUT_A)
    EACH_P(PUT_B)
}

#define ACC_T fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>
#define FA_T fcoopmatNV<16, gl_ScopeSubgroup, CM, CK>
#define FB_T fcoopmatNV<16, gl_ScopeSubgroup, CK, CN>
// EACH_I(X, j): X(i, j) for every accumulator row i; EACH_J(X): X(j) for every column;
// EACH_IJ(X): X(i, j) for all of them.
#if TM == 4
#define EACH_I(X, j) X(0, j) X(1, j) X(2, j) X(3, j)
#elif TM == 2
#define EACH_I(X, j) X(0, j) X(1, j)
#else
#error TM must be 2 or 4
#endif
#if TN == 4
#define EACH_J(X) X(0) X(1) X(2) X(3)
#define EACH_IJ(X) EACH_I(X, 0) EACH_I(X, 1) EACH_I(X, 2) EACH_I(X, 3)
#elif TN == 2
#define EACH_J(X) X(0) X(1)
#define EACH_IJ(X) EACH_I(X, 0) EACH_I(X, 1)
#else
#error TN must be 2 or 4
#endif
#define DECLARE_ACC(i, j) ACC_T acc##i##j = ACC_T(0.0);
#define DECLARE_FA(i, j) FA_T fa##i;
#define LOAD_FA(i, j) { uint m = sg_m * WM + i * CM; \
    if (TRANS_A != 0u) coopMatLoadNV(fa##i, smem, sa + kk * A_LD + m / 8u, A_LD, true); \
    else coopMatLoadNV(fa##i, smem, sa + m * A_LD + kk / 8u, A_LD, false); }
#define MULADD(i, j) acc##i##j = coopMatMulAddNV(fa##i, fb, acc##i##j);
#define COLUMN(j) { uint n = sg_n * WN + j * CN; \
    if (TRANS_B != 0u) coopMatLoadNV(fb, smem, sb + n * B_LD + kk / 8u, B_LD, true); \
    else coopMatLoadNV(fb, smem, sb + kk * B_LD + n / 8u, B_LD, false); \
    EACH_I(MULADD, j) }
#define STORE_DIRECT(i, j) store_direct(acc##i##j, base_c + (m_sg + i * CM) * pc.ldc + n_sg + j * CN);
#define STORE_SCRATCH(i, j) store_scratch(acc##i##j, scratch, base_c, m_sg + i * CM, n_sg + j * CN);

// alpha acc + beta C straight into C at element `off` (a CM x CN block inside C).
void store_direct(ACC_T acc, uint off)
{
    ACC_T r = acc * pc.alpha;
    if (pc.beta != 0.0) {  // beta = 0: C may hold NaN garbage
        ACC_T old;
        coopMatLoadNV(old, c, off, pc.ldc, false);
        r = r + old * pc.beta;
    }
    coopMatStoreNV(r, c, off, pc.ldc, false);
}

// The CM x CN block at (m0, n0) through this subgroup's scratch (uvec4 words at `scratch`,
// CN / 4 per row) to store_c, which applies the epilogue and skips what is outside C.
void store_scratch(ACC_T acc, uint scratch, uint base_c, uint m0, uint n0)
{
    subgroupBarrier();  // the previous block's reads are done
    coopMatStoreNV(acc, smem, scratch, CN / 4u, false);
    subgroupBarrier();
    for (uint e = gl_SubgroupInvocationID; e < CM * CN / 4u; e += SG_SIZE) {
        vec4 v = uintBitsToFloat(smem[scratch + e]);
        uint m = m0 + e / (CN / 4u), n = n0 + 4u * (e % (CN / 4u));
        if (m < pc.M) {
            if (n < pc.N) store_c(base_c, m, n, v.x);
            if (n + 1u < pc.N) store_c(base_c, m, n + 1u, v.y);
            if (n + 2u < pc.N) store_c(base_c, m, n + 2u, v.z);
            if (n + 3u < pc.N) store_c(base_c, m, n + 3u, v.w);
        }
    }
}

void main()
{
    uint tile_m, tile_n;
    // Whole workgroups leave together, so the barriers below stay uniform.
    if (!tile_coords(tile_m, tile_n)) return;
    uint batch = pc.batch_base + gl_WorkGroupID.z;
    uint base_a = batch * pc.stride_a, base_b = batch * pc.stride_b, base_c = batch * pc.stride_c;
    uint m_tile = tile_m * BM, n_tile = tile_n * BN;
    uint tid = gl_LocalInvocationIndex;
    uint sg = gl_SubgroupID, sg_m = sg / SG_N, sg_n = sg % SG_N;
    bool vec_a = pc.lda % 8u == 0u && base_a % 8u == 0u, vec_b = pc.ldb % 8u == 0u && base_b % 8u == 0u;

    EACH_IJ(DECLARE_ACC)

    fetch(base_a, base_b, m_tile, n_tile, 0u, tid, vec_a, vec_b);
    put(0u, tid);
    barrier();
    uint steps = (pc.K + BK - 1u) / BK;
    for (uint step = 0u; step < steps; step++) {
        uint stage = step & 1u;
        bool more = step + 1u < steps;
        if (more) fetch(base_a, base_b, m_tile, n_tile, (step + 1u) * BK, tid, vec_a, vec_b);
        uint sa = stage * STAGE_WORDS, sb = sa + A_WORDS;
        [[unroll]] for (uint kk = 0u; kk < BK; kk += CK) {
            EACH_I(DECLARE_FA, 0)
            FB_T fb;
            EACH_I(LOAD_FA, 0)
            EACH_J(COLUMN)
        }
        // Stage stage ^ 1 was last read in the previous step, before the barrier that ended it.
        if (more) put(stage ^ 1u, tid);
        barrier();
    }

    uint m_sg = m_tile + sg_m * WM, n_sg = n_tile + sg_n * WN;
    // Straight to C: no per-element epilogue, the subgroup's block inside C, and rows of C
    // 16-byte aligned (what the driver may assume of a cooperative-matrix store).
    if (pc.flags == 0u && m_sg + WM <= pc.M && n_sg + WN <= pc.N && pc.ldc % 4u == 0u && base_c % 4u == 0u) {
        EACH_IJ(STORE_DIRECT)
        return;
    }
    // Through the scratch: CM x CN floats per subgroup.
    uint scratch = sg * (CM * CN / 4u);
    EACH_IJ(STORE_SCRATCH)
}
