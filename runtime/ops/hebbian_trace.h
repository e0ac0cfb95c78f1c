/* The Hebbian trace update (ENN-SPEC, one time step):
 *   H_new = clip((1 - eta) H + eta (dH + xi), -clip, clip)
 *   dH = mean over the batch of outer(a_b, z_b) [N,h]    (shared trace, paper mode)
 *      = outer(a_b, z_b) per sample         [B,N,h]  (per-sample trace)
 * xi is Normal(0, sigma^2) from the Philox stream (seed, stream) at index = flat element
 * of H (use the time step as the stream), or a caller's buffer shaped like H (what
 * `enn grad` takes when the user supplies the noise), or off. */
#ifndef ENN_OPS_HEBBIAN_TRACE_H
#define ENN_OPS_HEBBIAN_TRACE_H

#include "ops/memory_shape.h"
#include "ops/view.h"

typedef enum enn_noise_mode {
    ENN_NOISE_OFF = 0,
    ENN_NOISE_PHILOX = 1,   /* xi = sigma * enn_philox_normal(seed, stream, index) */
    ENN_NOISE_BUFFER = 2,   /* xi = the buffer `xi` (already scaled), shaped like H */
} enn_noise_mode;

typedef struct enn_trace_noise {
    enn_noise_mode mode;
    float sigma;
    uint64_t seed, stream;
    enn_view xi;
} enn_trace_noise;

typedef struct enn_hebbian_params {
    float eta;           /* Hebbian learning rate (0.05) */
    float clip;          /* the trace is clipped to [-clip, clip] (0.1) */
    enn_trace_noise noise;
} enn_hebbian_params;

/* How the shared trace's batch sum is split (interleaved partial sums added in order):
 * 1 on CPU devices and for a per-sample trace; on GPUs enough parts to fill a 256-wide
 * workgroup. Every kernel that sums the batch mean uses this count, so the forward
 * update and the backward passes' recomputed clip masks agree bit for bit. */
uint32_t enn_hebbian_mean_parts(const enn_context *ctx, enn_memory_shape s);

/* H_new: like H, out (must not overlap H); H: [N,h] or [B,N,h]; a: [B,N]; z: [B,h]. */
enn_status enn_hebbian_trace_forward(enn_recorder *rec, enn_memory_shape s, enn_view H_new, enn_view H, enn_view a,
                                     enn_view z, const enn_hebbian_params *p);

/* Bytes of the backward pass's workspace: one float per element of H. */
uint64_t enn_hebbian_trace_workspace_bytes(enn_memory_shape s);

/* Given dH_new (the gradient reaching H_new), the gradients of H, a and z:
 *   g = dH_new where -clip <= pre <= clip (bounds included), else 0
 *   dH = (1 - eta) g;  da, dz through the outer products (eta/B each in shared mode).
 * pre is recomputed from the same inputs and noise as the forward pass, bit-identically.
 * beta_* (0 or 1): 1 adds into the existing gradient. dH may be the same view as dH_new
 * (in place) only with beta_dH = 0; no other outputs may overlap inputs. Two dispatches. */
enn_status enn_hebbian_trace_backward(enn_recorder *rec, enn_memory_shape s, enn_view dH, enn_view da, enn_view dz,
                                      enn_view workspace, enn_view dH_new, enn_view H, enn_view a, enn_view z,
                                      const enn_hebbian_params *p, float beta_dH, float beta_da, float beta_dz);

#endif
