/* Split-K GEMM, for products whose output is small and whose K is long: the language
 * model's dh = dlogits W^T is [R, V] x [V, 128] with V = 188,590, a 128 x 128 output per
 * chunk of rows, i.e. 4 workgroups of 64 x 64 each running a K-loop of 188,590 while the
 * rest of the GPU idles. Split-K cuts K into slices of kc (a multiple of 64 floats, so
 * every slice starts on a 256-byte boundary of A and B):
 *
 *   W[s] = alpha op(A)[:, s kc : (s+1) kc] op(B)[s kc : (s+1) kc, :]   s < S   (one strided-batched enn_gemm)
 *   C    = alpha op(A)[:, S kc : K] op(B)[S kc : K, :] + beta C              (the tail, when K > S kc)
 *   C   += sum_s W[s]     (enn_sum_rows over the [S, M*N] workspace: a fixed-order tree)
 *
 * (without a tail, the sum applies beta). Every step runs in a fixed order, so the result
 * is bitwise repeatable; it differs from enn_gemm's only by the order of the additions. */
#ifndef ENN_OPS_GEMM_SPLIT_K_H
#define ENN_OPS_GEMM_SPLIT_K_H

#include "ops/gemm.h"

/* A split count for an M x N x K product: 1 (no split) unless K is much longer than
 * the output is wide and the output is small, else about K / 2048 slices, at most
 * 256 and with a workspace of at most 64 MiB. */
uint32_t enn_gemm_split_k_count(uint32_t m, uint32_t n, uint32_t k);
/* The split count for a weight gradient on ctx's device: 1 on CPU devices (their cores are
 * busy without it) and with ENN_DISABLE_SPLIT_K=1; on GPUs enough slices (of at least 64
 * floats of K) that the product has about 256 workgroups. */
uint32_t enn_gemm_split_k_count_for(const enn_context *ctx, uint32_t m, uint32_t n, uint32_t k);
/* Bytes of the workspace enn_gemm_split_k needs for `splits` slices. */
uint64_t enn_gemm_split_k_workspace_bytes(uint32_t m, uint32_t n, uint32_t splits);

/* C = alpha op(A) op(B) + beta C (d as for enn_gemm) in at most `splits` K-slices
 * through `workspace`. No bias, no activation, no batch, packed C (ldc 0 or n): those
 * are ENN_ERROR_INVALID_ARGUMENT. splits <= 1, or K too short to split, runs enn_gemm. */
enn_status enn_gemm_split_k(enn_recorder *rec, const enn_gemm_desc *d, uint32_t splits, enn_view workspace);

#endif
