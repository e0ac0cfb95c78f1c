/* Test helpers for op tests: device buffers filled from host arrays and read back, and
 * error measures against double-precision references. */
#ifndef ENN_TEST_DEVICE_DATA_H
#define ENN_TEST_DEVICE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "enn.h"

/* A device buffer holding `bytes` bytes of `data` (zeros when data is NULL); fails the test on error. */
enn_buffer *dd_upload(enn_context *ctx, const void *data, size_t bytes);
/* Reads `bytes` bytes at `offset` into dst; fails the test on error. */
void dd_download(enn_context *ctx, const enn_buffer *buf, size_t offset, void *dst, size_t bytes);
/* Fills x[n] with uniform numbers in [lo, hi) (float and its exact double copy). */
void dd_fill_uniform(uint64_t *seed, float *x, double *xd, size_t n, double lo, double hi);
/* max_i |got_i - ref_i| / max(|ref_i|, floor): relative error, with an absolute floor
 * below which a value counts as zero. *worst gets the index of the maximum. */
double dd_max_rel_error(const float *got, const double *ref, size_t n, double floor, size_t *worst);
/* max_i |got_i - ref_i| / scale_i: error against the size of the terms that made
 * ref_i (for results that may cancel, like a + b). */
double dd_max_scaled_error(const float *got, const double *ref, const double *scale, size_t n, size_t *worst);
/* Same for double results (reference against finite differences). */
double dd_max_rel_error_d(const double *got, const double *ref, size_t n, double floor, size_t *worst);

#endif
