/* Split-K GEMM on top of enn_gemm (a strided batch over K-slices) and enn_sum_rows. */
#include "ops/gemm_split_k.h"

#include "core/error.h"
#include "ops/launch.h"
#include "ops/reduce.h"

#define MAX_SPLITS 256u
#define TARGET_SLICE 2048u
#define MAX_WORKSPACE ((uint64_t)64 << 20)

uint32_t enn_gemm_split_k_count(uint32_t m, uint32_t n, uint32_t k)
{
    uint32_t wide = m > n ? m : n;
    /* Outputs of many tiles already fill a GPU; split only long, narrow products. */
    if ((uint64_t)m * n > (1u << 20) || k < 8ull * wide || k < 2 * TARGET_SLICE) return 1;
    uint64_t s = k / TARGET_SLICE;
    if (s > MAX_SPLITS) s = MAX_SPLITS;
    uint64_t fit = MAX_WORKSPACE / ((uint64_t)m * n * 4);
    if (s > fit) s = fit;
    return s < 2 ? 1 : (uint32_t)s;
}

uint64_t enn_gemm_split_k_workspace_bytes(uint32_t m, uint32_t n, uint32_t splits)
{
    return (uint64_t)(splits ? splits : 1) * m * n * 4;
}

enn_status enn_gemm_split_k(enn_recorder *rec, const enn_gemm_desc *d, uint32_t splits, enn_view workspace)
{
    const char *op = "gemm_split_k";
    if (!rec || !d) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: NULL argument", op);
    if (d->bias.buf || d->act != ENN_ACT_NONE || d->batch > 1 || (d->ldc && d->ldc != d->n))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: takes no bias, activation or batch, and a packed C "
                         "(bias %s, activation %d, batch %u, ldc %u for N %u)", op, d->bias.buf ? "set" : "none",
                         (int)d->act, d->batch, d->ldc, d->n);
    /* Slices of kc covering K in at most `splits` pieces; kc is a multiple of 256 bytes'
     * worth of elements, so each slice (and the tail) starts 256-byte aligned along a row
     * of A or B, or a multiple of 256 bytes of rows down, whatever the leading dimension. */
    uint64_t ab_size = d->ab_type == ENN_F16 ? 2 : 4, align = ENN_VIEW_ALIGN / ab_size;
    uint64_t kc = splits > 1 ? ((uint64_t)d->k + splits - 1) / splits : d->k;
    kc = (kc + align - 1) / align * align;
    uint32_t full = (uint32_t)(d->k / kc), tail = (uint32_t)(d->k - (uint64_t)full * kc);
    if (splits <= 1 || full < 2 || !d->m || !d->n) return enn_gemm(rec, d);
    uint64_t mn = (uint64_t)d->m * d->n;
    ENN_TRY(enn_ops_check_view(op, "workspace", workspace, mn * full * 4));
    if (mn > 0xffffffffu) return enn_error(ENN_ERROR_SHAPE, "%s: a %u x %u output is too large", op, d->m, d->n);

    /* Stored layouts (as enn_gemm): where K-slice s starts, in elements. */
    uint32_t lda = d->lda ? d->lda : d->trans_a ? d->m : d->k;
    uint32_t ldb = d->ldb ? d->ldb : d->trans_b ? d->k : d->n;
    uint64_t step_a = d->trans_a ? kc * lda : kc, step_b = d->trans_b ? kc : kc * ldb;

    enn_gemm_desc slices = *d;
    slices.k = (uint32_t)kc;
    slices.lda = lda;
    slices.ldb = ldb;
    slices.ldc = d->n;
    slices.c = workspace;
    slices.beta = 0.0f;
    slices.batch = full;
    slices.stride_a = step_a;
    slices.stride_b = step_b;
    slices.stride_c = mn;
    ENN_TRY(enn_gemm(rec, &slices));

    float beta = d->beta;
    if (tail) {
        /* The tail's A and B start full * kc along K: a multiple of 256 bytes. */
        enn_gemm_desc t = *d;
        t.k = tail;
        t.lda = lda;
        t.ldb = ldb;
        t.a = enn_view_at(d->a.buf, d->a.offset + full * step_a * ab_size);
        t.b = enn_view_at(d->b.buf, d->b.offset + full * step_b * ab_size);
        ENN_TRY(enn_gemm(rec, &t));
        beta = 1.0f;
    }
    /* Under the product's own name, so that a profile counts the sum with it. */
    return enn_sum_rows_named(rec, d->name ? d->name : "gemm_split_k", full, (uint32_t)mn, workspace, 1.0f, beta, d->c);
}

/* Weight gradients (dW = X^T dY over all R = T * B rows) have small outputs and K = R: on
 * a GPU a few dozen output tiles leave most of the device idle for the whole K-loop. */
#define GPU_TILE 64u          /* the tiled GEMM's output tile edge */
#define GPU_TILES_WANTED 256u /* about two workgroups per multiprocessor on a large GPU */
#define MIN_SLICE 64u         /* floats of K per slice: 256-byte slices */

uint32_t enn_gemm_split_k_count_for(const enn_context *ctx, uint32_t m, uint32_t n, uint32_t k)
{
    if (ctx->caps.device_type == ENN_DEVICE_CPU || ctx->env.disable_split_k) return 1;
    uint64_t tiles = (uint64_t)((m + GPU_TILE - 1) / GPU_TILE) * ((n + GPU_TILE - 1) / GPU_TILE);
    if (tiles >= GPU_TILES_WANTED || k < 2 * MIN_SLICE) return 1;
    uint64_t s = GPU_TILES_WANTED / tiles, by_k = k / MIN_SLICE, fit = MAX_WORKSPACE / ((uint64_t)m * n * 4);
    if (s > by_k) s = by_k;
    if (s > fit) s = fit;
    if (s > MAX_SPLITS) s = MAX_SPLITS;
    return s < 2 ? 1 : (uint32_t)s;
}
