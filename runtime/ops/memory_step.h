/* The forward pass of one step of the ENN's memory path, fused (the fast path):
 *   E = M + alpha H;  a = softmax(cos(z, E) / tau_e);  m = a E;
 *   H_new = clip((1 - eta) H + eta (dH + xi), -clip, clip)
 * Per-sample trace: one dispatch. Shared trace: two (the batch mean needs every row's a
 * first). The results equal those of enn_effective_memory_forward +
 * enn_cosine_attention_forward + enn_hebbian_trace_forward up to fp32 rounding of E, and
 * the backward ops of those three apply unchanged (enn_hebbian_trace_backward
 * recomputes this kernel's clip mask exactly). */
#ifndef ENN_OPS_MEMORY_STEP_H
#define ENN_OPS_MEMORY_STEP_H

#include "ops/hebbian_trace.h"
#include "ops/memory_shape.h"
#include "ops/view.h"

/* a: [B,N] out; m: [B,h] out; H_new: like H, out (must not overlap H);
 * z: [B,h]; M: [N,h]; H: [N,h] or [B,N,h]. */
enn_status enn_memory_step_forward(enn_recorder *rec, enn_memory_shape s, enn_view a, enn_view m, enn_view H_new,
                                   enn_view z, enn_view M, enn_view H, float alpha, float tau_e,
                                   const enn_hebbian_params *hebbian);

/* The backward pass of step t of the memory path, fused (the reverse scan's fast path):
 * two dispatches per step with a shared trace, one per sample. The scan carries
 *   g_t = [pre_t inside the clip] * dH_t+1     (like H; zero for the last step)
 * where pre_t is the unclipped update of step t. Given g_t, it
 *   adds to dz_t the gradients through the attention and the update,
 *   adds dE_t to dM (shared trace), or writes dM_samples_next = dM_samples + each
 *     sample's dE_tb (per-sample trace: two buffers the caller alternates, which on CPU
 *     devices turns a load-add-store per element into a texel fetch and a store; the
 *     caller sums the last one over the samples once, after the scan),
 *   writes g_prev = [pre_t-1 inside the clip] * dH_t, dH_t = (1 - eta) g_t + alpha dE_t,
 *     where pre_t-1 is recomputed bit for bit as the forward pass did only where H_t
 *     reaches the clip (prev_* and prev_hebbian are step t-1's inputs), or, at t = 0
 *     (prev_H.buf NULL), dH_0 itself.
 * With g.buf NULL (trace_gradient = stop) only dz and dM (dM_samples) are produced. */
typedef struct enn_memory_backward_step {
    enn_view z, a, H, dm;   /* step t: z [B,h], a [B,N], H_t, dm [B,h] (the gradient reaching m) */
    enn_view M;             /* the memory bank [N,h] (E = M + alpha H is recomputed) */
    enn_view dz;            /* [B,h], in/out */
    enn_view g;             /* g_t, like H; NULL buf: no gradient through the trace */
    enn_view prev_z, prev_a, prev_H;   /* step t-1's inputs; prev_H NULL buf at t = 0 */
    enn_hebbian_params prev_hebbian;   /* eta, clip and the noise of step t-1's update */
    enn_view g_prev;        /* out, like H: g_t-1, or dH_0 at t = 0 (must not overlap g) */
    enn_view dM;            /* shared trace: [N,h], += */
    enn_view dM_samples;    /* per-sample trace: [B,N,h], the sum so far, in */
    enn_view dM_samples_next; /* per-sample trace: [B,N,h], out: dM_samples + dE (must not overlap it) */
    enn_view workspace;     /* enn_cosine_attention_workspace_bytes(s) */
} enn_memory_backward_step;

enn_status enn_memory_step_backward(enn_recorder *rec, enn_memory_shape s, const enn_memory_backward_step *st,
                                    float alpha, float tau_e);

#endif
