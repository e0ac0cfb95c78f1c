/* GEMM: C = act(alpha * op(A) op(B) + beta * C + bias), strided-batched, fp32 accumulate.
 *
 *   op(A): M x K   (A stored row-major M x K with leading dimension lda, or, trans_a,
 *                   K x M: op(A)[m][k] = A[k * lda + m])
 *   op(B): K x N   (likewise, trans_b: B stored N x K)
 *   C:     M x N   row-major, leading dimension ldc, always fp32
 *   bias:  N       optional, added to every row before the activation
 *   batch: entry b reads A + b*stride_a, B + b*stride_b, writes C + b*stride_c
 *          (elements); a stride of 0 shares that operand across the batch.
 *
 * Variants (shaders/gemm.comp) and how one is chosen, per device, unless forced:
 *   fp32 A and B:  CPU devices (lavapipe) -> ENN_GEMM_TEXEL (register-blocked, no shared
 *                  memory: shared memory is a per-lane loop there; A and B read through
 *                  uniform texel buffers, whose fetches are gathers on llvmpipe) when the
 *                  device has R32G32B32A32_SFLOAT uniform texel buffers, A and B allow vec4
 *                  loads (lda, ldb and the batch strides multiples of 4, M too with
 *                  trans_a, N too without trans_b) and each fits in one texel buffer
 *                  (caps.max_texel_buffer_elements vec4s); else ENN_GEMM_REG (the same
 *                  kernel on storage buffers). ENN_DISABLE_GEMM_TEXEL=1 turns the texel
 *                  path off. Its block grows with the product: 8 x 8 per lane below 2^24
 *                  multiply-adds, 16 x 8 below 2^27, else 16 x 16 with the multiply-adds
 *                  in row order (ENN_DISABLE_GEMM_TEXEL_WIDE=1: 16 x 8 there too;
 *                  ENN_GEMM_TEXEL_TILE=8|16|wide forces one, for tests and tuning);
 *                  GPUs -> ENN_GEMM_TILED when its tile fits caps.max_shared_memory and
 *                  the workgroup limits, else ENN_GEMM_REG. ENN_GEMM_TILED is a compile-time
 *                  register block per invocation (gemm_tiled.glsl; shape list in gemm.c);
 *                  ENN_GEMM_TILES=rm,rn,bk (rm, rn 4 or 8) forces one for tuning, and
 *                  ENN_GEMM_TILES=loop the earlier loop-over-arrays kernel (comparison).
 *   fp16 A and B:  ENN_GEMM_COOPMAT when caps.cooperative_matrix (VK_NV_cooperative_matrix,
 *                  fp16 x fp16 -> fp32; ENN_DISABLE_COOPMAT turns it off) and the tile fits
 *                  the shared memory (tile shape: gemm.c; ENN_GEMM_COOPMAT_TILES=
 *                  sg_m,sg_n,tiles_m,tiles_n,bk overrides it for tuning), else ENN_GEMM_F16 (needs caps.storage_16bit;
 *                  ENN_DISABLE_FP16 turns fp16 off altogether).
 * A variant is forced by desc.variant or, when that is ENN_GEMM_AUTO, by the environment
 * variable ENN_GEMM_VARIANT=reg|texel|tiled|f16|coopmat. A forced variant the device or the
 * operand types cannot run is an ENN_ERROR_UNSUPPORTED, never a silent fallback. All these
 * variables are read when the context is created (ctx->env), never at a launch. */
#ifndef ENN_OPS_GEMM_H
#define ENN_OPS_GEMM_H

#include "ops/view.h"

#include "ops/activation.h"

typedef enum enn_gemm_variant {
    ENN_GEMM_AUTO = 0,
    ENN_GEMM_REG,      /* fp32, register-blocked vec4, no shared memory */
    ENN_GEMM_TILED,    /* fp32, shared-memory tiles + register blocking */
    ENN_GEMM_F16,      /* fp16 A and B in storage, tiled, fp32 accumulation */
    ENN_GEMM_COOPMAT,  /* fp16 A and B, NV cooperative matrices, fp32 accumulation */
    ENN_GEMM_TEXEL,    /* ENN_GEMM_REG reading A and B through uniform texel buffers */
    ENN_GEMM_VARIANT_COUNT
} enn_gemm_variant;

typedef struct enn_gemm_desc {
    enn_view a, b, c;
    enn_view bias;            /* bias.buf == NULL: no bias */
    uint32_t m, n, k;
    int trans_a, trans_b;
    uint32_t lda, ldb, ldc;   /* 0: packed (the stored row length) */
    uint32_t batch;           /* 0 or 1: a single product */
    uint64_t stride_a, stride_b, stride_c; /* elements between batch entries */
    float alpha, beta;        /* beta == 0: C is written without being read */
    enn_activation act;
    enn_scalar_type ab_type;  /* storage of A and B: ENN_F32 or ENN_F16 */
    enn_gemm_variant variant; /* ENN_GEMM_AUTO: the device's choice (see above) */
    const char *name;         /* dispatch label for timestamps; NULL: the variant's name */
} enn_gemm_desc;

/* alpha = 1, everything else zero: fill in views and sizes. */
#define ENN_GEMM_DESC_INIT {.alpha = 1.0f}

/* The common case, packed operands and no batch: C[m x n] = act(op(A) op(B) + beta C +
 * bias), op(A) m x k, op(B) k x n; name labels the dispatch. */
static inline enn_gemm_desc enn_gemm_desc_packed(const char *name, enn_view c, enn_view a, int trans_a, enn_view b,
                                                 int trans_b, uint32_t m, uint32_t n, uint32_t k, float beta,
                                                 enn_view bias, enn_activation act)
{
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    d.a = a;
    d.b = b;
    d.c = c;
    d.bias = bias;
    d.m = m;
    d.n = n;
    d.k = k;
    d.trans_a = trans_a;
    d.trans_b = trans_b;
    d.beta = beta;
    d.act = act;
    d.name = name;
    return d;
}

/* Records C = act(alpha op(A) op(B) + beta C + bias). */
enn_status enn_gemm(enn_recorder *rec, const enn_gemm_desc *d);

/* The variant enn_gemm would run for this description on this context (after
 * desc.variant and ENN_GEMM_VARIANT), or an error saying why none can. */
enn_status enn_gemm_pick_variant(enn_context *ctx, const enn_gemm_desc *d, enn_gemm_variant *out);
/* 1 when the context can run the variant for operands of type ab_type. */
int enn_gemm_variant_supported(enn_context *ctx, enn_gemm_variant v, enn_scalar_type ab_type);
/* "reg", "tiled", "f16", "coopmat", "texel" ("auto" for ENN_GEMM_AUTO). */
const char *enn_gemm_variant_name(enn_gemm_variant v);

/* ---------------------------------------------------------------- linear layer
 * y[M x N] = act(x[M x K] w[K x N] + bias[N]): one enn_gemm with an epilogue.
 * Backward, given dy[M x N] (the gradient after the activation's own backward):
 *   dx[M x K] = dy w^T      dw[K x N] = x^T dy      dbias[N] = sum over rows of dy
 * Each gradient is accumulated (+=) when `accumulate`, else overwritten; a NULL
 * gradient view buffer skips it. All fp32, packed row-major. */
enn_status enn_linear_forward(enn_recorder *rec, enn_view y, enn_view x, enn_view w, enn_view bias,
                              uint32_t m, uint32_t k, uint32_t n, enn_activation act);
enn_status enn_linear_backward(enn_recorder *rec, enn_view dx, enn_view dw, enn_view dbias, enn_view dy,
                               enn_view x, enn_view w, uint32_t m, uint32_t k, uint32_t n, int accumulate);
/* out[n] = beta * out[n] + sum over m of in[m * ld + n], for m < rows, n < cols. */
enn_status enn_column_sums(enn_recorder *rec, enn_view out, enn_view in, uint32_t rows, uint32_t cols,
                           uint32_t ld, float beta);

#endif
