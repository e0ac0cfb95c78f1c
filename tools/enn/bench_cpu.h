/* The CPU baselines of `enn bench ops`: plain single-threaded C loops in float that
 * compute what the device kernels compute (shared trace mode, no noise, beta = 0), so
 * the benchmark can both time them and check the device's results against them. They
 * are straightforward, honest loops: no SIMD intrinsics, no threads, no tricks, and no
 * deliberately slow code either. */
#ifndef ENN_TOOL_BENCH_CPU_H
#define ENN_TOOL_BENCH_CPU_H

#include <stddef.h>
#include <stdint.h>

/* a [B,N], m [B,h] from z [B,h], E [N,h]. */
void cpu_cosine_attention_forward(uint32_t B, uint32_t N, uint32_t h, const float *z, const float *E, float tau_e,
                                  float *a, float *m);
/* dz [B,h], dE [N,h] from dm [B,h] (no da_in); recomputes a as the device does.
 * scratch: 2 N h + 2 N + 2 h floats. */
void cpu_cosine_attention_backward(uint32_t B, uint32_t N, uint32_t h, const float *z, const float *E, float tau_e,
                                   const float *dm, float *dz, float *dE, float *scratch);
/* H_new [N,h] = clip((1 - eta) H + eta mean_b outer(a_b, z_b), -clip, clip). */
void cpu_hebbian_trace_forward(uint32_t B, uint32_t N, uint32_t h, const float *H, const float *a, const float *z,
                               float eta, float clip, float *H_new);
/* dH [N,h], da [B,N], dz [B,h] from dH_new. scratch: N h floats (the masked gradient). */
void cpu_hebbian_trace_backward(uint32_t B, uint32_t N, uint32_t h, const float *H, const float *a, const float *z,
                                float eta, float clip, const float *dH_new, float *dH, float *da, float *dz,
                                float *scratch);
/* E [copies,n] = M [n] + alpha H [copies,n]. */
void cpu_effective_memory_forward(size_t copies, size_t n, const float *M, const float *H, float alpha, float *E);
/* dM [n] = sum over copies of dE; dH = alpha dE. */
void cpu_effective_memory_backward(size_t copies, size_t n, const float *dE, float alpha, float *dM, float *dH);
/* y [R,C], mean, rstd [R] from x [R,C], gain, bias [C]. */
void cpu_layer_norm_forward(uint32_t R, uint32_t C, const float *x, const float *gain, const float *bias, float eps,
                            float *y, float *mean, float *rstd);
void cpu_layer_norm_backward(uint32_t R, uint32_t C, const float *x, const float *gain, const float *mean,
                             const float *rstd, const float *dy, float *dx, float *dgain, float *dbias);
/* loss [R], lse [R] from logits [R,V] and labels [R] (all < V, none ignored); returns the mean loss. */
float cpu_xent_forward(uint32_t R, uint32_t V, const float *logits, const uint32_t *labels, float *loss, float *lse);
/* dlogits [R,V] = scale (softmax - onehot) / R. */
void cpu_xent_backward(uint32_t R, uint32_t V, const float *logits, const uint32_t *labels, const float *lse,
                       float scale, float *dlogits);
void cpu_embedding_forward(uint32_t rows, uint32_t dim, const float *table, const uint32_t *ids, float *out);
/* dtable [vocab, dim] += the rows of dout scattered by ids, in position order. */
void cpu_embedding_backward(uint32_t rows, uint32_t dim, const uint32_t *ids, const float *dout, float *dtable);
void cpu_add(size_t n, const float *a, const float *b, float *y);
void cpu_tanh_forward(size_t n, const float *x, float *y);
/* dx = dy (1 - y^2) */
void cpu_tanh_backward(size_t n, const float *y, const float *dy, float *dx);
/* out [C] = sum over rows of x [R,C] */
void cpu_sum_rows(uint32_t R, uint32_t C, const float *x, float *out);
float cpu_l2_norm(size_t n, const float *x);
/* y = x keep / (1 - p), keep from the Philox stream (seed, stream) like the kernel. */
void cpu_dropout_forward(size_t n, const float *x, float p, uint64_t seed, uint64_t stream, float *y);
/* One Keras Adam step (no clipping, no decay) of n parameters; alpha the bias-corrected step size. */
void cpu_adam(size_t n, float *p, const float *g, float *m, float *v, float alpha, float beta1, float beta2,
              float epsilon);
/* s, p [T,B], ctx [B,h] from hs [T,B,h], w [h+1]. */
void cpu_attention_pooling_forward(uint32_t T, uint32_t B, uint32_t h, const float *hs, const float *w, float *s,
                                   float *p, float *ctx);
/* dhs [T,B,h] (overwritten), dw [h+1] (added to) from dctx [B,h]. scratch: T floats. */
void cpu_attention_pooling_backward(uint32_t T, uint32_t B, uint32_t h, const float *hs, const float *w,
                                    const float *s, const float *p, const float *dctx, float *dhs, float *dw,
                                    float *scratch);

/* The ENN cell's h-dependent recurrence with layer norm (runtime/ops/recurrence.h), dense
 * [T,B,w] steps: u [T,B,3h] in/out, hs [T+1,B,h] (slab 0 in), hp [T,B,h], mean, rstd [T,B]. */
void cpu_recurrence_forward(uint32_t T, uint32_t B, uint32_t h, const float *W_uh, const float *W_o, const float *b_o,
                            const float *gain, const float *bias, float eps, float *u, float *hs, float *hp,
                            float *mean, float *rstd);
/* dhs [T+1,B,h] in/out (slabs 1..T: the head's gradients; every slab gets the recurrent
 * part added), dhp [T,B,h], du [T,B,3h] out. */
void cpu_recurrence_backward(uint32_t T, uint32_t B, uint32_t h, const float *W_uh, const float *W_o,
                             const float *gain, const float *u, const float *hp, const float *mean, const float *rstd,
                             float *dhs, float *dhp, float *du);

#endif
