/* Helpers for the op tests: device buffers filled from host arrays, a recorder, and the
 * error measures the tests assert on. */
#ifndef ENN_TEST_OPS_TESTUTIL_H
#define ENN_TEST_OPS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/recorder.h"
#include "enn.h"

/* A buffer of n floats (at least 1) holding `data` (or zeros when data is NULL). */
enn_buffer *tu_buffer(enn_context *ctx, const float *data, size_t n);
/* Downloads n floats. Returns a malloc'd array. */
float *tu_download(enn_context *ctx, const enn_buffer *buf, size_t n);
/* n floats uniform in [lo, hi) from the test generator. */
float *tu_random(uint64_t *state, size_t n, double lo, double hi);
/* Converts floats to doubles and back (malloc'd). */
double *tu_to_double(const float *x, size_t n);

/* max_i |got - want| / (max_i |want| + floor): the error relative to the scale of the
 * whole tensor, which is what fp32 sums are accurate to (an element that cancels to near
 * zero is not held to a relative bound of its own). */
double tu_rel_error(const float *got, const double *want, size_t n, double floor);

/* A random dimension for shape sweeps: one of the edge values, or uniform in [1, max]. */
uint32_t tu_pick_dim(uint64_t *state, uint32_t max);

#endif
