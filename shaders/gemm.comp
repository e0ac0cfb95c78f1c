#version 450
// GEMM: C = act(alpha * op(A) op(B) + beta * C + bias), strided-batched, fp32 accumulation.
//   op(A) is M x K, op(B) is K x N, C is M x N row-major with leading dimension ldc.
//   A row-major: op(A)[m][k] = A[m*lda + k], or with TRANS_A, A[k*lda + m]; B likewise.
//   bias (optional) has N entries, added to every row; batch b offsets A, B, C by
//   b * stride_a, stride_b, stride_c elements (the batch index is the z workgroup).
//
// Six variants of one contract (runtime/ops/gemm.c picks one per device):
//   gemm          register-blocked, no shared memory: a subgroup owns an 8 x 8S block
//                 of C (8 x 8 per lane), shares the A block through subgroup broadcasts
//                 and reads A and B as vec4s when the layout allows. For CPU-like devices
//                 (lavapipe), where every shared-memory or buffer access costs a loop
//                 over the lanes, so the fewest, widest loads and the most FMAs per
//                 load win.
//   gemm_texel    the same with A and B read as vec4 texels of uniform texel buffers
//                 (a gather on llvmpipe, ~3x faster there than storage-buffer loads),
//                 a 16 x 8S block per subgroup, and every lane fetching the A block
//                 itself instead of broadcasts. vec4 layouts only (VEC_A = VEC_B = 1).
//                 gemm_texel_8: 8 x 8S blocks, for products below ~256^3, where the
//                 16-row kernel's extra compile time (~2x) is not won back.
//                 gemm_texel_wide: 16 x 16S blocks (16 x 16 per lane, its 4 column
//                 groups S groups apart: INTERLEAVE), multiply-adds row by row
//                 (ROW_ORDER); the CPU devices' kernel for large products.
//   gemm_tiled_<RM><RN>  shared-memory tiles (two stages, 16-byte loads, A staged
//                 transposed) with a compile-time RM x RN register block per invocation,
//                 spelled out by macros (gemm_tiled.glsl). For GPUs.
//   gemm_tiled    the earlier shared-memory kernel: one stage, scalar loads, a TM x TN
//                 block given by specialization constants (loops over arrays). Kept for
//                 comparison (ENN_GEMM_TILES=loop) and for workgroups below 16 x 16.
//   gemm_f16      gemm_tiled with A and B stored as float16 (accumulation stays fp32).
//   gemm_coopmat  fp16 A and B staged in shared memory (two stages, 16-byte loads),
//                 multiplied by NV cooperative matrices (tensor cores) into fp32
//                 accumulators (gemm_coopmat.glsl).
// Every variant handles any M, N, K: tiles that overhang the matrix read zeros and
// write nothing.
//! variant gemm_texel -DTEXEL=1 -DRB=2
//! variant gemm_texel_8 -DTEXEL=1 -DRB=1
//! variant gemm_texel_wide -DTEXEL=1 -DRB=2 -DCG=4 -DROW_ORDER=1 -DINTERLEAVE=1
//! variant gemm_tiled -DTILED=1
//! variant gemm_tiled_88 -DTILED=1 -DRM=8 -DRN=8
//! variant gemm_tiled_84 -DTILED=1 -DRM=8 -DRN=4
//! variant gemm_tiled_48 -DTILED=1 -DRM=4 -DRN=8
//! variant gemm_tiled_44 -DTILED=1 -DRM=4 -DRN=4
//! variant gemm_f16 -DTILED=1 -DSTORAGE_F16=1
//! variant gemm_coopmat_t44 -DCOOPMAT=1 -DTM=4 -DTN=4
//! variant gemm_coopmat_t42 -DCOOPMAT=1 -DTM=4 -DTN=2
//! variant gemm_coopmat_t24 -DCOOPMAT=1 -DTM=2 -DTN=4
//! variant gemm_coopmat_t22 -DCOOPMAT=1 -DTM=2 -DTN=2
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
#extension GL_EXT_control_flow_attributes : require
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint TRANS_A = 0;
layout(constant_id = 4) const uint TRANS_B = 0;

#ifndef TEXEL
layout(std430, set = 0, binding = 0) readonly buffer BufA { AB_TYPE a[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB { AB_TYPE b[]; };
#define A1(i) float(a[i])
#define B1(i) float(b[i])
#endif
layout(std430, set = 0, binding = 2) buffer BufC { float c[]; };
layout(std430, set = 0, binding = 3) readonly buffer BufBias { float bias[]; };

layout(push_constant) uniform Push {
    uint M, N, K;
    uint lda, ldb, ldc;
    uint stride_a, stride_b, stride_c;  // elements between batch entries
    uint tiles_n;                       // workgroup tiles along N (grid is folded 2-D)
    uint tiles_total;                   // tiles per batch entry
    uint batch_base;                    // first batch entry of this dispatch
    uint flags;                         // bit 0: bias; bits 1-2: activation; bits 3-4: gemm_tiled.glsl
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

// The epilogue's options: bit 0 adds the bias, bit 1 reads C (beta != 0; beta's value
// stays a push constant), bits 2-3 the activation; EPI_RUNTIME takes all three from the
// push constants instead (pc.flags, pc.beta != 0). CPU devices' kernels (gemm, gemm_texel*)
// get them compiled in, chosen by the launcher: llvmpipe runs both sides of every branch
// under lane masks, so there every option, used or not, costs every element of C (the
// bias and C loads are a loop over the lanes each, tanh and exp many instructions).
// GPUs keep the run-time flags (uniform branches cost nothing there) and one pipeline.
const uint EPI_BIAS = 1u, EPI_READ_C = 2u, EPI_RUNTIME = 16u;
#if !defined(TILED) && !defined(COOPMAT)
layout(constant_id = 12) const uint EPILOGUE = EPI_RUNTIME;
#else
const uint EPILOGUE = EPI_RUNTIME;
#endif
bool epi_bias() { return (EPILOGUE & EPI_RUNTIME) != 0u ? (pc.flags & 1u) != 0u : (EPILOGUE & EPI_BIAS) != 0u; }
bool epi_read_c() { return (EPILOGUE & EPI_RUNTIME) != 0u ? pc.beta != 0.0 : (EPILOGUE & EPI_READ_C) != 0u; }
uint epi_act() { return (EPILOGUE & EPI_RUNTIME) != 0u ? (pc.flags >> 1) & 3u : (EPILOGUE >> 2) & 3u; }

// Writes one element of C through the epilogue.
void store_c(uint base_c, uint m, uint n, float acc)
{
    uint i = base_c + m * pc.ldc + n;
    float v = pc.alpha * acc;
    if (epi_read_c()) v += pc.beta * c[i];   // beta = 0: C may hold NaN garbage
    if (epi_bias()) v += bias[n];
    uint act = epi_act();
    if (act == ACT_RELU) v = max(v, 0.0);
    else if (act == ACT_TANH) v = tanh(clamp(v, -15.0, 15.0));   // tanh(15) is 1.0 in float; no driver's
                                                                 // exp-based tanh can overflow to NaN
    else if (act == ACT_SIGMOID) v = 1.0 / (1.0 + exp(-v));
    c[i] = v;
}

#ifdef TEXEL
// A and B as uniform texel buffers of vec4s (format R32G32B32A32_SFLOAT): llvmpipe
// fetches texels with a gather and no per-lane branches, where a storage-buffer load
// at a non-uniform address is a loop over the lanes with a bounds check in each. The
// launcher runs this variant only where both vec4 flags hold (VEC_A = VEC_B = 1), so
// the scalar loads below are compiled out.
layout(constant_id = 5) const uint VEC_A = 1;
layout(constant_id = 6) const uint VEC_B = 1;
layout(set = 0, binding = 0) uniform samplerBuffer tex_a;
layout(set = 0, binding = 1) uniform samplerBuffer tex_b;
#define A1(i) texelFetch(tex_a, int((i) >> 2))[(i) & 3u]
#define B1(i) texelFetch(tex_b, int((i) >> 2))[(i) & 3u]
#define A4(i) texelFetch(tex_a, int(i))
#define B4(i) texelFetch(tex_b, int(i))

// C and bias as vec4s where ldc, the batch stride of C and N are multiples of 4: a
// quarter of the epilogue's storage-buffer accesses, each a loop over the lanes on
// llvmpipe (and a quarter of the code to compile).
layout(constant_id = 7) const uint VEC_C = 0;
// K % 4 != 0: the last step of K masks what its vec4 loads read past K. Where K is a
// multiple of 4 that test (in every step: llvmpipe runs both sides of a branch under
// masks) is compiled out.
layout(constant_id = 8) const uint K_TAIL = 1;
layout(std430, set = 0, binding = 2) buffer BufC4 { vec4 c4[]; };
layout(std430, set = 0, binding = 3) readonly buffer BufBias4 { vec4 bias4[]; };

// store_c for C[m][n .. n+3], n a multiple of 4 below N, given bias[n .. n+3].
void store_c4(uint base_c, uint m, uint n, vec4 acc, vec4 bias_n)
{
    uint i = (base_c + m * pc.ldc + n) / 4u;
    vec4 v = pc.alpha * acc;
    if (epi_read_c()) v += pc.beta * c4[i];
    if (epi_bias()) v += bias_n;
    uint act = epi_act();
    if (act == ACT_RELU) v = max(v, vec4(0.0));
    else if (act == ACT_TANH) v = tanh(clamp(v, -15.0, 15.0));
    else if (act == ACT_SIGMOID) v = 1.0 / (1.0 + exp(-v));
    c4[i] = v;
}
#endif

// op(A)[m][k] and op(B)[k][n] with zeros outside the matrix.
float load_a(uint base, uint m, uint k)
{
    if (m >= pc.M || k >= pc.K) return 0.0;
    return A1(base + (TRANS_A != 0u ? k * pc.lda + m : m * pc.lda + k));
}
float load_b(uint base, uint k, uint n)
{
    if (k >= pc.K || n >= pc.N) return 0.0;
    return B1(base + (TRANS_B != 0u ? n * pc.ldb + k : k * pc.ldb + n));
}

#if !defined(TILED) && !defined(COOPMAT)
// ---------------------------------------------------------------- register-blocked
// One workgroup is one subgroup of S lanes (S = the device's subgroup size, >= 8). It
// owns rows m0 .. m0+7 and columns n0 .. n0 + 8S - 1; lane l owns all 8 rows and the
// columns n0 + 8l .. n0 + 8l + 7, as 8 x 2 vec4 accumulators.
// Per step of 4 along K: the 8 x 4 block of op(A) is 8 vec4s, which lanes 0..7 load
// one each (a single load instruction for the subgroup) and share by subgroupBroadcast;
// each lane loads its own 4 x 8 block of op(B) as 8 vec4s. On lavapipe, where every
// buffer load is a loop over the lanes, this gives 256 FMAs per 9 loads.
// Measured on lavapipe (Mesa 22.3, per CPU-second): a vec4 load with its lane loop costs
// ~120 cycles and a vec4 broadcast ~70, against ~1 per 8-wide FMA, so loads still
// dominate; 16 rows (RB = 2) or 16 columns per lane (CG = 4) measured no better than
// this 8 x 8 block, and uniform-address loads no cheaper than broadcasts.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
// vec4 loads of A or B are aligned (ld, stride multiples of 4) and stay inside the
// matrix (transposed A: M % 4 == 0; plain B: N % 4 == 0); else scalar loads with checks.
#ifndef TEXEL
layout(constant_id = 5) const uint VEC_A = 0;
layout(constant_id = 6) const uint VEC_B = 0;

layout(std430, set = 0, binding = 0) readonly buffer BufA4 { vec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB4 { vec4 b4[]; };
#define A4(i) a4[i]
#define B4(i) b4[i]
#endif

// This lane's part of the 8 x 4 block of op(A) at rows m0.., columns k..:
//   plain A: lane l holds row m0 + (l & 7), k .. k+3
//   transposed A: lane l holds column k + ((l >> 1) & 3), rows m0 + 4*(l & 1) .. +3
vec4 lane_a(uint base, uint m0, uint k, uint lane, bool vec)
{
    if (TRANS_A == 0u) {
        uint m = m0 + (lane & 7u);
        if (vec) return A4((base + min(m, pc.M - 1u) * pc.lda + k) / 4u);
        return vec4(load_a(base, m, k), load_a(base, m, k + 1u), load_a(base, m, k + 2u), load_a(base, m, k + 3u));
    }
    uint kk = k + ((lane >> 1) & 3u), m = m0 + 4u * (lane & 1u);
    if (vec) return A4((base + min(kk, pc.K - 1u) * pc.lda + min(m, pc.M - 4u)) / 4u);
    return vec4(load_a(base, m, kk), load_a(base, m + 1u, kk), load_a(base, m + 2u, kk), load_a(base, m + 3u, kk));
}

#ifndef TEXEL
// The 8 lanes' parts of the A block, in every lane (broadcast ids must be literals).
void share_a(vec4 v, out vec4 sh[8])
{
    sh[0] = subgroupBroadcast(v, 0u); sh[1] = subgroupBroadcast(v, 1u);
    sh[2] = subgroupBroadcast(v, 2u); sh[3] = subgroupBroadcast(v, 3u);
    sh[4] = subgroupBroadcast(v, 4u); sh[5] = subgroupBroadcast(v, 5u);
    sh[6] = subgroupBroadcast(v, 6u); sh[7] = subgroupBroadcast(v, 7u);
}
#endif

// op(A)[m0 + r][k + kk] for r < 8, kk < 4, from the shared parts.
float elem_a(vec4 sh[8], uint r, uint kk)
{
    return TRANS_A == 0u ? sh[r][kk] : sh[kk * 2u + r / 4u][r % 4u];
}

// op(B)[k + kk][n .. n+3] for this lane.
vec4 lane_b(uint base, uint k, uint kk, uint n, bool vec)
{
    uint kr = k + kk;
    if (vec && TRANS_B == 0u) return B4((base + min(kr, pc.K - 1u) * pc.ldb + min(n, pc.N - 4u)) / 4u);
    return vec4(load_b(base, kr, n), load_b(base, kr, n + 1u), load_b(base, kr, n + 2u), load_b(base, kr, n + 3u));
}

// op(B)[k .. k+3][n + c] for this lane, c < 4, as the columns of a mat4 (transposed B).
mat4 lane_b_cols(uint base, uint k, uint n)
{
    uint i0 = (base + min(n, pc.N - 1u) * pc.ldb + k) / 4u;
    uint i1 = (base + min(n + 1u, pc.N - 1u) * pc.ldb + k) / 4u;
    uint i2 = (base + min(n + 2u, pc.N - 1u) * pc.ldb + k) / 4u;
    uint i3 = (base + min(n + 3u, pc.N - 1u) * pc.ldb + k) / 4u;
    return mat4(B4(i0), B4(i1), B4(i2), B4(i3));
}

// A lane's CG column groups of 4: adjacent (n0, n0 + 4, ..), or with INTERLEAVE S groups
// apart (n0, n0 + 4S, ..: the lanes' fetches of one group then cover 16S contiguous
// floats of B; the wide kernel's LM dW = h^T dlogits, streaming B, took 111-113 ms
// against 130-132 adjacent, the other two LM products within 1-3%).
#ifdef INTERLEAVE
#define JS (4u * gl_WorkGroupSize.x)
#else
#define JS 4u
#endif
// Rows per workgroup = 8 * RB, column groups of 4 per lane = CG (register block RB*8 x CG*4);
// runtime/ops/gemm.c must agree (tile_m = 8 RB, tile_n = 4 CG S).
#ifndef RB
#define RB 1
#endif
#ifndef CG
#define CG 2
#endif
// Every loop over the register block is spelled out by these macros: lavapipe (NIR)
// does not always unroll nested loops, and a register array indexed by a loop counter
// becomes scratch memory, a per-lane loop per access.
#define A_ELEM(r, kk) (TRANS_A == 0u ? sh[r][kk] : sh[8 * ((r) / 8) + (kk) * 2 + ((r) % 8) / 4][(r) % 4])
#define STORE_J(r, j) STORE_COL(r, j, 0) STORE_COL(r, j, 1) STORE_COL(r, j, 2) STORE_COL(r, j, 3)
#if CG == 4
#define FMA_J1(r, kk) acc[r][1] = fma(av, bv[kk][1], acc[r][1]); acc[r][2] = fma(av, bv[kk][2], acc[r][2]); \
    acc[r][3] = fma(av, bv[kk][3], acc[r][3]);
#define STORE_J1(r) STORE_J(r, 1) STORE_J(r, 2) STORE_J(r, 3)
#elif CG == 2
#define FMA_J1(r, kk) acc[r][1] = fma(av, bv[kk][1], acc[r][1]);
#define STORE_J1(r) STORE_J(r, 1)
#else
#define FMA_J1(r, kk)
#define STORE_J1(r)
#endif
#define FMA_ROW(r, kk) { vec4 av = vec4(A_ELEM(r, kk)); acc[r][0] = fma(av, bv[kk][0], acc[r][0]); FMA_J1(r, kk) }
#define FMA_K8(kk, o) FMA_ROW(o + 0, kk) FMA_ROW(o + 1, kk) FMA_ROW(o + 2, kk) FMA_ROW(o + 3, kk) \
    FMA_ROW(o + 4, kk) FMA_ROW(o + 5, kk) FMA_ROW(o + 6, kk) FMA_ROW(o + 7, kk)
#if RB == 2
#define FMA_K(kk) FMA_K8(kk, 0) FMA_K8(kk, 8)
#define ALL_ROWS(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13) F(14) F(15)
#else
#define FMA_K(kk) FMA_K8(kk, 0)
#define ALL_ROWS(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#endif
#define STORE_COL(r, j, cc) { uint n = n0 + JS * (j) + (cc); \
    if (n < pc.N) store_c(base_c, m, n, acc[r][j][cc]); }
#define STORE_ROW(r) { uint m = m0 + (r); if (m < pc.M) { \
    STORE_COL(r, 0, 0) STORE_COL(r, 0, 1) STORE_COL(r, 0, 2) STORE_COL(r, 0, 3) STORE_J1(r) } }
#define STORE_ROW4(r) { uint m = m0 + (r); if (m < pc.M) \
    for (uint j = 0u; j < CG; j++) if (n0 + JS * j < pc.N) store_c4(base_c, m, n0 + JS * j, acc[r][j], bias_j[j]); }
#define ZERO_ROW(r) { for (uint j = 0u; j < CG; j++) acc[r][j] = vec4(0.0); }

// op(B)[k .. k+3][n0 .. n0 + 4CG - 1] of this lane: bv[kk][j] = op(B)[k + kk][n0 + 4j .. +3].
void load_b_block(uint base, uint k, uint n0, bool vec, out vec4 bv[4][CG])
{
    if (vec && TRANS_B != 0u) {
        mat4 c0 = transpose(lane_b_cols(base, k, n0));
        bv[0][0] = c0[0]; bv[1][0] = c0[1]; bv[2][0] = c0[2]; bv[3][0] = c0[3];
        for (uint j = 1u; j < CG; j++) {
            mat4 c1 = transpose(lane_b_cols(base, k, n0 + JS * j));
            bv[0][j] = c1[0]; bv[1][j] = c1[1]; bv[2][j] = c1[2]; bv[3][j] = c1[3];
        }
        return;
    }
#define LOAD_B_J(j) bv[0][j] = lane_b(base, k, 0u, n0 + JS * j, vec); bv[1][j] = lane_b(base, k, 1u, n0 + JS * j, vec); \
    bv[2][j] = lane_b(base, k, 2u, n0 + JS * j, vec); bv[3][j] = lane_b(base, k, 3u, n0 + JS * j, vec);
    LOAD_B_J(0)
#if CG >= 2
    LOAD_B_J(1)
#endif
#if CG == 4
    LOAD_B_J(2) LOAD_B_J(3)
#endif
}

// The A block's 8 * RB rows at k .. k+3, in every lane.
void load_share_a(uint base, uint m0, uint k, uint lane, bool vec, out vec4 sh[8 * RB])
{
#ifdef TEXEL
    // Every lane fetches the whole A block itself (the same addresses in every lane):
    // on llvmpipe a texel gather costs less than the 8 broadcasts it replaces, and the
    // kernel needs no subgroup operations (any subgroup size, any workgroup size).
    for (uint b = 0u; b < RB; b++)
        for (uint i = 0u; i < 8u; i++) sh[8u * b + i] = lane_a(base, m0 + 8u * b, k, i, vec);
#else
    vec4 part[8];
    share_a(lane_a(base, m0, k, lane, vec), part);
    for (uint i = 0u; i < 8u; i++) sh[i] = part[i];
#if RB == 2
    share_a(lane_a(base, m0 + 8u, k, lane, vec), part);
    for (uint i = 0u; i < 8u; i++) sh[8u + i] = part[i];
#endif
#endif
}

#ifdef TEXEL
// The last step of K reads up to 3 columns of A and rows of B past K with its vec4
// loads (clamped or rounded into the views, so inside them): zeros instead, in both
// operands (what lies past K may be NaN, and NaN * 0 is NaN).
void zero_past_k(uint k, inout vec4 bv[4][CG], inout vec4 sh[8 * RB])
{
    uint left = pc.K - k;  // 1 .. 3
    bvec4 keep = lessThan(uvec4(0u, 1u, 2u, 3u), uvec4(left));
    for (uint kk = 0u; kk < 4u; kk++)
        for (uint j = 0u; j < CG; j++) bv[kk][j] = keep[kk] ? bv[kk][j] : vec4(0.0);
    for (uint i = 0u; i < 8u * RB; i++) {
        if (TRANS_A == 0u) sh[i] = mix(vec4(0.0), sh[i], keep);        // sh[r] = row r, k .. k+3
        else sh[i] = keep[(i % 8u) / 2u] ? sh[i] : vec4(0.0);        // sh[8b + 2kk + h] = column k + kk
    }
}
#endif

void main()
{
    uint tile_m, tile_n;
    if (!tile_coords(tile_m, tile_n)) return;
    uint batch = pc.batch_base + gl_WorkGroupID.z;
    uint base_a = batch * pc.stride_a, base_b = batch * pc.stride_b, base_c = batch * pc.stride_c;
#ifdef TEXEL
    uint lane = gl_LocalInvocationID.x;
#else
    uint lane = gl_SubgroupInvocationID;  // the workgroup is one subgroup
#endif
    uint m0 = tile_m * 8u * RB;
#ifdef INTERLEAVE
    uint n0 = tile_n * gl_WorkGroupSize.x * 4u * CG + 4u * lane;
#else
    uint n0 = (tile_n * gl_WorkGroupSize.x + lane) * 4u * CG;
#endif
    // No early exit: every lane takes part in the broadcasts.

    vec4 acc[8 * RB][CG];  // acc[r][j] = C[m0 + r][n0 + 4j .. +3]
    ALL_ROWS(ZERO_ROW)

#ifdef TEXEL
    // One copy of the loads for the whole of K (each texel fetch is a lot of code to
    // compile): the last step masks what it read past K.
    for (uint k = 0u; k < pc.K; k += 4u) {
        vec4 bv[4][CG], sh[8 * RB];
        load_b_block(base_b, k, n0, VEC_B != 0u, bv);
        load_share_a(base_a, m0, k, lane, VEC_A != 0u, sh);
        if (K_TAIL != 0u && k + 4u > pc.K) zero_past_k(k, bv, sh);
#ifdef ROW_ORDER
        // Row by row, each accumulator taking its 4 steps of K in a row: on llvmpipe the
        // block's accumulators do not fit in registers, and step by step each was loaded
        // and stored for every multiply-add (here once per 4). LM head GEMMs (2432 x
        // 10000 x 128 and the two transposed products): ~25-35% less time than 16 x 8S
        // blocks in step order; 16 x 16 per lane beat 16 x 8, 8 x 16, 32 x 8 and 32 x 16.
#define FMA_ROW4(r) FMA_ROW(r, 0) FMA_ROW(r, 1) FMA_ROW(r, 2) FMA_ROW(r, 3)
        ALL_ROWS(FMA_ROW4)
#else
        FMA_K(0) FMA_K(1) FMA_K(2) FMA_K(3)
#endif
    }
#else
    uint k_full = pc.K & ~3u;
    for (uint k = 0u; k < k_full; k += 4u) {
        vec4 bv[4][CG], sh[8 * RB];
        load_b_block(base_b, k, n0, VEC_B != 0u, bv);
        load_share_a(base_a, m0, k, lane, VEC_A != 0u, sh);
        FMA_K(0) FMA_K(1) FMA_K(2) FMA_K(3)
    }
    if (k_full < pc.K) {  // the last 1-3 steps of K, zero-padded
        vec4 bv[4][CG], sh[8 * RB];
        load_b_block(base_b, k_full, n0, false, bv);
        load_share_a(base_a, m0, k_full, lane, false, sh);
        FMA_K(0) FMA_K(1) FMA_K(2) FMA_K(3)
    }
#endif
#ifdef TEXEL
    if (VEC_C != 0u) {
        // The bias of the lane's column groups, loaded once for all rows (each load is
        // a loop over the lanes on llvmpipe); clamped into the bias where N ends early.
        vec4 bias_j[CG];
        for (uint j = 0u; j < CG; j++) bias_j[j] = epi_bias() ? bias4[min(n0 + JS * j, pc.N - 4u) / 4u] : vec4(0.0);
        ALL_ROWS(STORE_ROW4)
        return;
    }
#endif
    ALL_ROWS(STORE_ROW)
}
#endif

#if defined(TILED) && defined(RM)
// ---------------------------------------------------------------- shared-memory tiles, fixed block
#include "gemm_tiled.glsl"
#endif

#if defined(TILED) && !defined(RM)
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
#ifdef STORAGE_F16
#define PUT_A(mm, kk, v) tile_a[(kk) * BM + (mm)] = (v)
#define PUT_B(kk, nn, v) tile_b[(kk) * BN + (nn)] = (v)
#include "gemm_stage_f16.glsl"
#endif

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
#ifdef STORAGE_F16
        stage_a(base_a, m_tile, k0, tid, threads);
        stage_b(base_b, n_tile, k0, tid, threads);
#else
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
#endif
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
#include "gemm_coopmat.glsl"
#endif
