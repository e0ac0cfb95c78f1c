/* The effective memory the attention reads: E = M + alpha H (ENN-SPEC), with M [N,h]
 * the learned memory bank and H the Hebbian trace, [N,h] shared or [B,N,h] per sample
 * (then E is [B,N,h] too). */
#ifndef ENN_OPS_EFFECTIVE_MEMORY_H
#define ENN_OPS_EFFECTIVE_MEMORY_H

#include "ops/memory_shape.h"
#include "ops/view.h"

/* E: like H, out; M: [N,h]; H: [N,h] or [B,N,h]. */
enn_status enn_effective_memory_forward(enn_recorder *rec, enn_memory_shape s, enn_view E, enn_view M, enn_view H,
                                        float alpha);
/* dM: [N,h] = sum over copies of dE; dH: like H = alpha dE. beta_* (0 or 1): 1 adds
 * into the existing gradient (dM sums over time steps; dH meets the Hebbian backward's
 * gradient of the same H). */
enn_status enn_effective_memory_backward(enn_recorder *rec, enn_memory_shape s, enn_view dM, enn_view dH, enn_view dE,
                                         float alpha, float beta_dM, float beta_dH);

#endif
