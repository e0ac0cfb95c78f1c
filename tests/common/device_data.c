#include "device_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enn_buffer *dd_upload(enn_context *ctx, const void *data, size_t bytes)
{
    enn_buffer *b = NULL;
    ENN_ASSERT_OK(enn_buffer_create(ctx, bytes, &b));
    if (data) {
        ENN_ASSERT_OK(enn_buffer_upload(ctx, b, 0, data, bytes));
    } else {
        void *zero = calloc(1, bytes);
        cr_assert(zero);
        ENN_ASSERT_OK(enn_buffer_upload(ctx, b, 0, zero, bytes));
        free(zero);
    }
    return b;
}

void dd_download(enn_context *ctx, const enn_buffer *buf, size_t offset, void *dst, size_t bytes)
{
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, offset, dst, bytes));
}

void dd_fill_uniform(uint64_t *seed, float *x, double *xd, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) {
        float v = (float)test_rand_uniform(seed, lo, hi);
        if (x) x[i] = v;
        if (xd) xd[i] = v;
    }
}

double dd_max_rel_error(const float *got, const double *ref, size_t n, double floor, size_t *worst)
{
    double e = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]) / fmax(fabs(ref[i]), floor);
        if (!(d <= e)) { e = d; w = i; }  /* NaN counts as worst */
        if (isnan(d)) { e = INFINITY; w = i; break; }
    }
    if (worst) *worst = w;
    return e;
}

double dd_max_rel_error_d(const double *got, const double *ref, size_t n, double floor, size_t *worst)
{
    double e = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]) / fmax(fabs(ref[i]), floor);
        if (!(d <= e)) { e = d; w = i; }
        if (isnan(d)) { e = INFINITY; w = i; break; }
    }
    if (worst) *worst = w;
    return e;
}

double dd_max_scaled_error(const float *got, const double *ref, const double *scale, size_t n, size_t *worst)
{
    double e = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]) / fmax(scale[i], 1e-300);
        if (!(d <= e)) { e = d; w = i; }
        if (isnan(d)) { e = INFINITY; w = i; break; }
    }
    if (worst) *worst = w;
    return e;
}
