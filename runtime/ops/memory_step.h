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

#endif
