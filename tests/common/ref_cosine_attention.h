/* Double-precision reference of cosine attention and retrieval (ENN-SPEC), written
 * straight from the formulas with every intermediate materialised. */
#ifndef ENN_TEST_REF_COSINE_ATTENTION_H
#define ENN_TEST_REF_COSINE_ATTENTION_H

#include <stdint.h>

/* z [B,h], E [N,h] (per_sample 0) or [B,N,h]; a [B,N], m [B,h] out. */
void ref_cosine_attention_forward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *z,
                                  const double *E, double tau_e, double *a, double *m);
/* The same with shift [B,N] (may be NULL) added to the cosines before the softmax (a
 * finite difference in it is the gradient of the cosines), and the cosines written to
 * cos [B,N] (may be NULL). */
void ref_cosine_attention_forward_shifted(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *z,
                                          const double *E, double tau_e, const double *shift, double *a, double *m,
                                          double *cos);
/* dm [B,h], da_in [B,N] or NULL; dz [B,h], dE like E (overwritten). */
void ref_cosine_attention_backward(uint32_t B, uint32_t N, uint32_t h, int per_sample, const double *z,
                                   const double *E, double tau_e, const double *dm, const double *da_in, double *dz,
                                   double *dE);

#endif
