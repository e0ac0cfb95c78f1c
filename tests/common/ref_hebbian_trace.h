/* Double-precision reference of the Hebbian trace update (ENN-SPEC). H, xi, H_new and
 * dH are [N,h] (per_sample 0) or [B,N,h]; a [B,N]; z [B,h]; xi may be NULL (no noise). */
#ifndef ENN_TEST_REF_HEBBIAN_TRACE_H
#define ENN_TEST_REF_HEBBIAN_TRACE_H

#include <stdint.h>

/* pre (may be NULL) gets the unclipped value. */
void ref_hebbian_trace_forward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *H, const double *a,
                               const double *z, const double *xi, double eta, double clip, double *H_new,
                               double *pre);
/* dH, da, dz are overwritten. */
void ref_hebbian_trace_backward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *H, const double *a,
                                const double *z, const double *xi, double eta, double clip, const double *dH_new,
                                double *dH, double *da, double *dz);

#endif
