/* Cosine attention over the ENN's memory slots, and retrieval (ENN-SPEC, one step):
 *   a = softmax_n( (z/|z|) . (E_n/|E_n|) / tau_e )    m = a E
 * with the norms clamped as sqrt(max(sum of squares, 1e-12)). tau_e = tau/(1 + 10 lambda)
 * is the caller's. E is the effective memory M + alpha H: [N,h] shared by the batch, or
 * [B,N,h] per sample (trace_mode = per_sample).
 *
 * Nothing besides a is saved for the backward pass: it recomputes the norms and
 * similarities (N*h work per batch row, as much as the forward pass), which keeps the
 * saved state of a step to a and m. */
#ifndef ENN_OPS_COSINE_ATTENTION_H
#define ENN_OPS_COSINE_ATTENTION_H

#include "ops/memory_shape.h"
#include "ops/view.h"

/* a: [B,N] out, m: [B,h] out; z: [B,h], E: [N,h] or [B,N,h]. */
enn_status enn_cosine_attention_forward(enn_recorder *rec, enn_memory_shape s, enn_view a, enn_view m, enn_view z,
                                        enn_view E, float tau_e);

/* Bytes of the workspace enn_cosine_attention_backward needs: (2 B N + B) floats. */
uint64_t enn_cosine_attention_workspace_bytes(enn_memory_shape s);

/* dz: [B,h], dE: like E; gradients in: dm [B,h] and, optionally, da_in [B,N] (the
 * gradient reaching a from elsewhere, e.g. the Hebbian update; da_in.buf NULL for none).
 * Inputs z, E, a as in the forward pass. beta_dz, beta_dE (0 or 1): 1 adds into the
 * existing gradient instead of overwriting it. Two dispatches in shared mode, one in
 * per-sample mode. */
enn_status enn_cosine_attention_backward(enn_recorder *rec, enn_memory_shape s, enn_view dz, enn_view dE,
                                         enn_view workspace, enn_view dm, enn_view da_in, enn_view z, enn_view E,
                                         enn_view a, float tau_e, float beta_dz, float beta_dE);

#endif
