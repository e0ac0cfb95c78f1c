/* Double-precision references: attention pooling over time, and MSE. */
#ifndef ENN_TEST_REF_POOLING_H
#define ENN_TEST_REF_POOLING_H

#include <stddef.h>

/* hs [T,B,h], w [h+1] (bias last) -> s, p [T,B], ctx [B,h]. */
void ref_attention_pooling_forward(size_t T, size_t B, size_t h, const double *hs, const double *w, double *s,
                                   double *p, double *ctx);
/* dctx [B,h] -> dhs [T,B,h] (overwritten), dw [h+1] (overwritten). */
void ref_attention_pooling_backward(size_t T, size_t B, size_t h, const double *hs, const double *w, const double *s,
                                    const double *p, const double *dctx, double *dhs, double *dw);

#endif
