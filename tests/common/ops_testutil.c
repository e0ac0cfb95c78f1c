#include "ops_testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "harness.h"

enn_buffer *tu_buffer(enn_context *ctx, const float *data, size_t n)
{
    if (n == 0) n = 1;
    enn_buffer *b = NULL;
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * sizeof(float), &b));
    if (data) ENN_ASSERT_OK(enn_buffer_upload(ctx, b, 0, data, n * sizeof(float)));
    else {
        float *zeros = calloc(n, sizeof *zeros);
        cr_assert(zeros);
        ENN_ASSERT_OK(enn_buffer_upload(ctx, b, 0, zeros, n * sizeof(float)));
        free(zeros);
    }
    return b;
}

float *tu_download(enn_context *ctx, const enn_buffer *buf, size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert(x);
    if (n) ENN_ASSERT_OK(enn_buffer_download(ctx, buf, 0, x, n * sizeof(float)));
    return x;
}

float *tu_random(uint64_t *state, size_t n, double lo, double hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)test_rand_uniform(state, lo, hi);
    return x;
}

double *tu_to_double(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    cr_assert(d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

double tu_rel_error(const float *got, const double *want, size_t n, double floor)
{
    double scale = floor, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (isnan(e)) return INFINITY; /* a NaN is a failure, whatever the others are */
        if (e > err) err = e;
    }
    return err / scale;
}

uint32_t tu_pick_dim(uint64_t *state, uint32_t max)
{
    static const uint32_t edges[] = {1, 2, 3, 7, 13, 31, 33, 63, 65, 97, 127, 129};
    uint64_t r = test_rand_u64(state);
    if (r % 2 == 0) {
        uint32_t e = edges[(r >> 8) % (sizeof edges / sizeof edges[0])];
        if (e <= max) return e;
    }
    return 1 + (uint32_t)((r >> 16) % max);
}
