#version 450
// GEMM: C = act(alpha * op(A) op(B) + beta * C + bias), strided-batched, fp32 accumulation.
//   op(A) is M x K, op(B) is K x N, C is M x N row-major with leading dimension ldc.
//   A row-major: op(A)[m][k] = A[m*lda + k], or with TRANS_A, A[k*lda + m]; B likewise.
//   bias (optional) has N entries, added to every row; batch b offsets A, B, C by
//   b * stride_a, stride_b, stride_c elements (the batch index is the z workgroup).
//
// Four variants of one contract (runtime/ops/gemm.c picks one per device):
//   gemm          register-blocked, no shared memory: each invocation owns a
//                 (4*RM) x (4*RN) block of C and reads A and B as vec4s when the
//                 layout allows. For CPU-like devices (lavapipe), where every shared-
//                 memory or buffer access costs a loop over the lanes, so the fewest,
//                 widest loads and the most FMAs per load win.
//   gemm_tiled    shared-memory tiles (BM x BK of A, BK x BN of B) staged by the whole
//                 workgroup, then register-blocked TM x TN per invocation. For GPUs.
//   gemm_f16      gemm_tiled with A and B stored as float16 (accumulation stays fp32).
//   gemm_coopmat  fp16 A and B staged in shared memory, multiplied by NV cooperative
//                 matrices (tensor cores) into fp32 accumulators.
// Every variant handles any M, N, K: tiles that overhang the matrix read zeros and
// write nothing.
//! variant gemm_tiled -DTILED=1
//! variant gemm_f16 -DTILED=1 -DSTORAGE_F16=1
//! variant gemm_coopmat -DCOOPMAT=1
#extension GL_GOOGLE_include_directive : require

#if defined(STORAGE_F16) || defined(COOPMAT)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define AB_TYPE float16_t
#else
#define AB_TYPE float
#endif
#ifdef COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint TRANS_A = 0;
layout(constant_id = 4) const uint TRANS_B = 0;

layout(std430, set = 0, binding = 0) readonly buffer BufA { AB_TYPE a[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB { AB_TYPE b[]; };
layout(std430, set = 0, binding = 2) buffer BufC { float c[]; };
layout(std430, set = 0, binding = 3) readonly buffer BufBias { float bias[]; };

layout(push_constant) uniform Push {
    uint M, N, K;
    uint lda, ldb, ldc;
    uint stride_a, stride_b, stride_c;  // elements between batch entries
    uint tiles_n;                       // workgroup tiles along N (grid is folded 2-D)
    uint tiles_total;                   // tiles per batch entry
    uint batch_base;                    // first batch entry of this dispatch
    uint flags;                         // bit 0: bias; bits 1-2: activation
    float alpha, beta;
} pc;

const uint ACT_NONE = 0u, ACT_RELU = 1u, ACT_TANH = 2u, ACT_SIGMOID = 3u;

// The workgroup's tile, from the folded grid: x + y * gx counts tiles row by row.
bool tile_coords(out uint tile_m, out uint tile_n)
{
    uint t = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    tile_m = t / pc.tiles_n;
    tile_n = t % pc.tiles_n;
    return t < pc.tiles_total;
}

// Writes one element of C through the epilogue.
void store_c(uint base_c, uint m, uint n, float acc)
{
    uint i = base_c + m * pc.ldc + n;
    float v = pc.alpha * acc;
    if (pc.beta != 0.0) v += pc.beta * c[i];   // beta = 0: C may hold NaN garbage
    if ((pc.flags & 1u) != 0u) v += bias[n];
    uint act = (pc.flags >> 1) & 3u;
    if (act == ACT_RELU) v = max(v, 0.0);
    else if (act == ACT_TANH) v = tanh(v);
    else if (act == ACT_SIGMOID) v = 1.0 / (1.0 + exp(-v));
    c[i] = v;
}

// op(A)[m][k] and op(B)[k][n] with zeros outside the matrix.
float load_a(uint base, uint m, uint k)
{
    if (m >= pc.M || k >= pc.K) return 0.0;
    return float(a[base + (TRANS_A != 0u ? k * pc.lda + m : m * pc.lda + k)]);
}
float load_b(uint base, uint k, uint n)
{
    if (k >= pc.K || n >= pc.N) return 0.0;
    return float(b[base + (TRANS_B != 0u ? n * pc.ldb + k : k * pc.ldb + n)]);
}

#if !defined(TILED) && !defined(COOPMAT)
// ---------------------------------------------------------------- register-blocked
// Invocation (x, y) of the workgroup owns rows m0 .. m0 + 4*RM - 1 and columns
// n0 .. n0 + 4*RN - 1. Per step of 4 along K it reads a 4x4 block of op(A) per row
// group and of op(B) per column group (4 vec4 loads each, whichever way the operand is
// stored) and does 64 FMAs per pair as one mat4 product.
layout(constant_id = 5) const uint VEC_A = 0;  // vec4 loads of A are in bounds and aligned
layout(constant_id = 6) const uint VEC_B = 0;
layout(constant_id = 7) const uint RM = 1;
layout(constant_id = 8) const uint RN = 2;

layout(std430, set = 0, binding = 0) readonly buffer BufA4 { vec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB4 { vec4 b4[]; };

// Columns kk of the result hold rows m..m+3 at k + kk (column-major 4x4 of op(A)).
mat4 block_a(uint base, uint m, uint k, bool vec)
{
    if (vec) {
        if (TRANS_A != 0u) {  // contiguous along m: a vec4 is a column of the block
            uint i = (base + k * pc.lda + m) / 4u, s = pc.lda / 4u;
            return mat4(a4[i], a4[i + s], a4[i + 2u * s], a4[i + 3u * s]);
        }
        // contiguous along k: a vec4 is a row; rows past M are clamped (read, unused)
        uint i0 = (base + min(m, pc.M - 1u) * pc.lda + k) / 4u;
        uint i1 = (base + min(m + 1u, pc.M - 1u) * pc.lda + k) / 4u;
        uint i2 = (base + min(m + 2u, pc.M - 1u) * pc.lda + k) / 4u;
        uint i3 = (base + min(m + 3u, pc.M - 1u) * pc.lda + k) / 4u;
        return transpose(mat4(a4[i0], a4[i1], a4[i2], a4[i3]));
    }
    mat4 r;
    for (uint kk = 0u; kk < 4u; kk++)
        r[kk] = vec4(load_a(base, m, k + kk), load_a(base, m + 1u, k + kk), load_a(base, m + 2u, k + kk),
                     load_a(base, m + 3u, k + kk));
    return r;
}

// Column c of the result holds op(B) at rows k..k+3, column n + c.
mat4 block_b(uint base, uint k, uint n, bool vec)
{
    if (vec) {
        if (TRANS_B != 0u) {  // contiguous along k: a vec4 is a column of the block
            uint i0 = (base + min(n, pc.N - 1u) * pc.ldb + k) / 4u;
            uint i1 = (base + min(n + 1u, pc.N - 1u) * pc.ldb + k) / 4u;
            uint i2 = (base + min(n + 2u, pc.N - 1u) * pc.ldb + k) / 4u;
            uint i3 = (base + min(n + 3u, pc.N - 1u) * pc.ldb + k) / 4u;
            return mat4(b4[i0], b4[i1], b4[i2], b4[i3]);
        }
        uint i = (base + k * pc.ldb + n) / 4u, s = pc.ldb / 4u;
        return transpose(mat4(b4[i], b4[i + s], b4[i + 2u * s], b4[i + 3u * s]));
    }
    mat4 r;
    for (uint cc = 0u; cc < 4u; cc++)
        r[cc] = vec4(load_b(base, k, n + cc), load_b(base, k + 1u, n + cc), load_b(base, k + 2u, n + cc),
                     load_b(base, k + 3u, n + cc));
    return r;
}

void main()
{
    uint tile_m, tile_n;
    if (!tile_coords(tile_m, tile_n)) return;
    uint batch = pc.batch_base + gl_WorkGroupID.z;
    uint base_a = batch * pc.stride_a, base_b = batch * pc.stride_b, base_c = batch * pc.stride_c;
    uint m0 = (tile_m * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * 4u * RM;
    uint n0 = (tile_n * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * 4u * RN;
    if (m0 >= pc.M || n0 >= pc.N) return;  // no barriers in this variant

    mat4 acc[RM][RN];  // acc[i][j][col][row]
    for (uint i = 0u; i < RM; i++)
        for (uint j = 0u; j < RN; j++) acc[i][j] = mat4(0.0);

    // vec4 loads along the contiguous direction: the layout flags say the strides allow
    // it; a block that overhangs M (transposed A) or N (plain B) falls back to scalars.
    uint k_full = pc.K & ~3u;
    for (uint k = 0u; k < k_full; k += 4u) {
        mat4 ab[RM], bb[RN];
        for (uint i = 0u; i < RM; i++) {
            uint m = m0 + 4u * i;
            ab[i] = block_a(base_a, m, k, VEC_A != 0u && (TRANS_A == 0u || m + 3u < pc.M));
        }
        for (uint j = 0u; j < RN; j++) {
            uint n = n0 + 4u * j;
            bb[j] = block_b(base_b, k, n, VEC_B != 0u && (TRANS_B != 0u || n + 3u < pc.N));
        }
        for (uint i = 0u; i < RM; i++)
            for (uint j = 0u; j < RN; j++) acc[i][j] += ab[i] * bb[j];
    }
    if (k_full < pc.K) {  // the last 1-3 steps of K, zero-padded
        for (uint i = 0u; i < RM; i++)
            for (uint j = 0u; j < RN; j++)
                acc[i][j] += block_a(base_a, m0 + 4u * i, k_full, false) * block_b(base_b, k_full, n0 + 4u * j, false);
    }

    for (uint i = 0u; i < RM; i++)
        for (uint j = 0u; j < RN; j++)
            for (uint cc = 0u; cc < 4u; cc++)
                for (uint r = 0u; r < 4u; r++) {
                    uint m = m0 + 4u * i + r, n = n0 + 4u * j + cc;
                    if (m < pc.M && n < pc.N) store_c(base_c, m, n, acc[i][j][cc][r]);
                }
}
#endif

#ifdef TILED
// ---------------------------------------------------------------- shared-memory tiles
// A workgroup of WX x WY invocations computes a BM x BN tile of C (BM = WY*TM,
// BN = WX*TN). Per step of BK along K it stages op(A)[BM][BK] and op(B)[BK][BN] in
// shared memory (zeros outside the matrix), then each invocation accumulates its
// TM x TN outputs, rows ly + WY*i and columns lx + WX*j, so neighbouring invocations
// read neighbouring shared words and write neighbouring columns of C.
layout(constant_id = 5) const uint TM = 4;
layout(constant_id = 6) const uint TN = 4;
layout(constant_id = 7) const uint BK = 16;
const uint WX = gl_WorkGroupSize.x, WY = gl_WorkGroupSize.y;
const uint BM = WY * TM, BN = WX * TN;

shared float tile_a[BK * BM];  // [k][m]
shared float tile_b[BK * BN];  // [k][n]

void main()
{
    uint tile_m, tile_n;
    // Whole workgroups leave together, so the barriers below stay uniform.
    if (!tile_coords(tile_m, tile_n)) return;
    uint batch = pc.batch_base + gl_WorkGroupID.z;
    uint base_a = batch * pc.stride_a, base_b = batch * pc.stride_b, base_c = batch * pc.stride_c;
    uint m_tile = tile_m * BM, n_tile = tile_n * BN;
    uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    uint tid = gl_LocalInvocationIndex, threads = WX * WY;

    float acc[TM][TN];
    for (uint i = 0u; i < TM; i++)
        for (uint j = 0u; j < TN; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        // Consecutive invocations read consecutive addresses of whichever layout.
        for (uint e = tid; e < BK * BM; e += threads) {
            uint kk = TRANS_A != 0u ? e / BM : e % BK;
            uint mm = TRANS_A != 0u ? e % BM : e / BK;
            tile_a[kk * BM + mm] = load_a(base_a, m_tile + mm, k0 + kk);
        }
        for (uint e = tid; e < BK * BN; e += threads) {
            uint kk = TRANS_B != 0u ? e % BK : e / BN;
            uint nn = TRANS_B != 0u ? e / BK : e % BN;
            tile_b[kk * BN + nn] = load_b(base_b, k0 + kk, n_tile + nn);
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float av[TM], bv[TN];
            for (uint i = 0u; i < TM; i++) av[i] = tile_a[kk * BM + ly + WY * i];
            for (uint j = 0u; j < TN; j++) bv[j] = tile_b[kk * BN + lx + WX * j];
            for (uint i = 0u; i < TM; i++)
                for (uint j = 0u; j < TN; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier();
    }
    for (uint i = 0u; i < TM; i++)
        for (uint j = 0u; j < TN; j++) {
            uint m = m_tile + ly + WY * i, n = n_tile + lx + WX * j;
            if (m < pc.M && n < pc.N) store_c(base_c, m, n, acc[i][j]);
        }
}
#endif

#ifdef COOPMAT
// ---------------------------------------------------------------- cooperative matrices
// A workgroup of SG_COUNT subgroups (SG_SIZE invocations each, laid out along x)
// computes a BM x BN tile; subgroup s owns rows (s / SG_N) * WM .. + WM and columns
// (s % SG_N) * WN .. + WN, as (WM / CM) x (WN / CN) accumulators of the device's
// CM x CN x CK shape. Per BK step the workgroup stages fp16 op(A) [BM][BK] and op(B)
// [BK][BN] in shared memory (zeros outside), so edges and transposes cost nothing in the
// multiply loop. Results go through a per-subgroup CM x CN fp32 scratch to the epilogue.
layout(constant_id = 5) const uint CM = 16;
layout(constant_id = 6) const uint CN = 16;
layout(constant_id = 7) const uint CK = 16;
layout(constant_id = 8) const uint SG_SIZE = 32;
layout(constant_id = 9) const uint SG_M = 2;   // subgroups along M
layout(constant_id = 10) const uint SG_N = 2;  // subgroups along N
layout(constant_id = 11) const uint TILES_M = 2;  // accumulators per subgroup along M
layout(constant_id = 12) const uint TILES_N = 4;  // and along N
layout(constant_id = 13) const uint BK = 32;
const uint WM = TILES_M * CM, WN = TILES_N * CN;
const uint BM = SG_M * WM, BN = SG_N * WN;
const uint PAD = 8u;  // skews rows of the staged tiles across shared-memory banks
const uint LDA_S = BK + PAD, LDB_S = BN + PAD;

shared float16_t tile_a[BM * LDA_S];  // [m][k]
shared float16_t tile_b[BK * LDB_S];  // [k][n]
shared float scratch[SG_M * SG_N * CM * CN];

void main()
{
    uint tile_m, tile_n;
    if (!tile_coords(tile_m, tile_n)) return;
    uint batch = pc.batch_base + gl_WorkGroupID.z;
    uint base_a = batch * pc.stride_a, base_b = batch * pc.stride_b, base_c = batch * pc.stride_c;
    uint m_tile = tile_m * BM, n_tile = tile_n * BN;
    uint tid = gl_LocalInvocationIndex, threads = gl_WorkGroupSize.x * gl_WorkGroupSize.y;
    uint sg = tid / SG_SIZE, lane = tid % SG_SIZE;
    uint sg_m = sg / SG_N, sg_n = sg % SG_N;

    fcoopmatNV<32, gl_ScopeSubgroup, CM, CN> acc[TILES_M][TILES_N];
    for (uint i = 0u; i < TILES_M; i++)
        for (uint j = 0u; j < TILES_N; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>(0.0);

    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        for (uint e = tid; e < BK * BM; e += threads) {
            uint kk = TRANS_A != 0u ? e / BM : e % BK;
            uint mm = TRANS_A != 0u ? e % BM : e / BK;
            uint m = m_tile + mm, k = k0 + kk;
            tile_a[mm * LDA_S + kk] = m < pc.M && k < pc.K
                ? a[base_a + (TRANS_A != 0u ? k * pc.lda + m : m * pc.lda + k)] : float16_t(0.0);
        }
        for (uint e = tid; e < BK * BN; e += threads) {
            uint kk = TRANS_B != 0u ? e % BK : e / BN;
            uint nn = TRANS_B != 0u ? e / BK : e % BN;
            uint k = k0 + kk, n = n_tile + nn;
            tile_b[kk * LDB_S + nn] = k < pc.K && n < pc.N
                ? b[base_b + (TRANS_B != 0u ? n * pc.ldb + k : k * pc.ldb + n)] : float16_t(0.0);
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk += CK) {
            fcoopmatNV<16, gl_ScopeSubgroup, CM, CK> fa[TILES_M];
            fcoopmatNV<16, gl_ScopeSubgroup, CK, CN> fb;
            for (uint i = 0u; i < TILES_M; i++)
                coopMatLoadNV(fa[i], tile_a, (sg_m * WM + i * CM) * LDA_S + kk, LDA_S, false);
            for (uint j = 0u; j < TILES_N; j++) {
                coopMatLoadNV(fb, tile_b, kk * LDB_S + sg_n * WN + j * CN, LDB_S, false);
                for (uint i = 0u; i < TILES_M; i++) acc[i][j] = coopMatMulAddNV(fa[i], fb, acc[i][j]);
            }
        }
        barrier();
    }

    uint scratch_base = sg * CM * CN;
    for (uint i = 0u; i < TILES_M; i++)
        for (uint j = 0u; j < TILES_N; j++) {
            coopMatStoreNV(acc[i][j], scratch, scratch_base, CN, false);
            subgroupBarrier();
            for (uint e = lane; e < CM * CN; e += SG_SIZE) {
                uint m = m_tile + sg_m * WM + i * CM + e / CN, n = n_tile + sg_n * WN + j * CN + e % CN;
                if (m < pc.M && n < pc.N) store_c(base_c, m, n, scratch[scratch_base + e]);
            }
            subgroupBarrier();
        }
}
#endif
