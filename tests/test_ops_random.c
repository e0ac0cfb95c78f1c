/* Philox streams: the generator against published known-answer vectors, the host's
 * add/multiply-only Box-Muller against libm in double, the device's streams bit for bit
 * against the host's, repeatability with one seed, difference with another, and the
 * moments of the distributions. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/philox.h"
#include "ops/random.h"
#include "ops_testutil.h"

/* Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors). */
Test(philox, known_answers)
{
    static const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        uint32_t out[4];
        enn_philox4x32_10(kat[k].ctr, kat[k].key, out);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(out[i], kat[k].out[i], "vector %zu word %d: %08x, expected %08x", k, i, out[i], kat[k].out[i]);
    }
}

/* The add/multiply-only transform against libm in double on the same two words. Its
 * pieces are accurate to ~1e-9 relative; the float rounding of ~20 operations on values
 * up to |z| = 5.8 gives an absolute error of a few 1e-6, so 2e-5 is a safe bound that a
 * wrong coefficient or quadrant (errors of 1e-3 or more) cannot pass. */
Test(philox, box_muller_matches_libm)
{
    uint64_t st = 11;
    double worst = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t w0 = (uint32_t)test_rand_u64(&st), w1 = (uint32_t)test_rand_u64(&st);
        if (i < 4) w0 = i < 2 ? 0u : 0xffffffffu, w1 = (i & 1) ? 0u : 0xffffffffu; /* extremes */
        double u1 = (double)((((w0 >> 9) << 1) | 1u)) * 0x1p-24, u2 = (double)(w1 >> 8) * 0x1p-24;
        double r = sqrt(-2.0 * log(u1));
        double c = r * cos(6.283185307179586 * u2), s = r * sin(6.283185307179586 * u2);
        worst = fmax(worst, fabs(enn_box_muller(w0, w1, 0) - c));
        worst = fmax(worst, fabs(enn_box_muller(w0, w1, 1) - s));
    }
    cr_assert_lt(worst, 2e-5, "worst absolute error %g", worst);
}

static void moments(const float *x, size_t n, double *mean, double *var)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (size_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
    *var = s2 / n;
}

/* Device normals equal host normals bit for bit, including slices that start at an
 * index that is not a multiple of 4 (one per element) and that is, with a partial last
 * group of 4 (four per Philox block), or none (a multiple of 16: on CPU devices four
 * blocks at a time, from a block that is not a multiple of 4); the same seed repeats,
 * another seed differs; the moments are right. */
Test(philox, device_streams)
{
    enn_context *ctx = test_context();
    const uint32_t n = 1 << 16;
    const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
    enn_buffer *a = tu_buffer(ctx, NULL, n), *b = tu_buffer(ctx, NULL, n), *c = tu_buffer(ctx, NULL, n),
               *u = tu_buffer(ctx, NULL, n), *s = tu_buffer(ctx, NULL, 101), *s4 = tu_buffer(ctx, NULL, 103),
               *s16 = tu_buffer(ctx, NULL, 160);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_random_normal(rec, enn_view_of(a), n, seed, stream, 0, 0.0f, 1.0f));
    ENN_ASSERT_OK(enn_random_normal(rec, enn_view_of(b), n, seed, stream, 0, 0.0f, 1.0f));
    ENN_ASSERT_OK(enn_random_normal(rec, enn_view_of(c), n, seed + 1, stream, 0, 0.0f, 1.0f));
    ENN_ASSERT_OK(enn_random_uniform(rec, enn_view_of(u), n, seed, stream + 1, 0, -2.0f, 3.0f));
    ENN_ASSERT_OK(enn_random_normal(rec, enn_view_of(s), 101, seed, stream, 4001, 0.5f, 0.01f));
    ENN_ASSERT_OK(enn_random_normal(rec, enn_view_of(s4), 103, seed, stream, 4000, 0.5f, 0.01f));
    ENN_ASSERT_OK(enn_random_normal(rec, enn_view_of(s16), 160, seed, stream, 4004, 0.5f, 0.01f));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *ha = tu_download(ctx, a, n), *hb = tu_download(ctx, b, n), *hc = tu_download(ctx, c, n),
          *hu = tu_download(ctx, u, n), *hs = tu_download(ctx, s, 101), *hs4 = tu_download(ctx, s4, 103),
          *hs16 = tu_download(ctx, s16, 160);

    cr_assert(!memcmp(ha, hb, n * sizeof(float)), "two runs with one seed differ");
    uint32_t same = 0, mismatches = 0, first = 0;
    for (uint32_t i = 0; i < n; i++) {
        same += ha[i] == hc[i];
        float want = enn_philox_normal(seed, stream, i);
        if (memcmp(&want, &ha[i], 4) && mismatches++ == 0) first = i;
    }
    cr_assert_lt(same, 8, "%u of %u normals equal under another seed", same, n);
    cr_assert_eq(mismatches, 0, "%u device normals differ from the host's; first at %u: %.9g vs %.9g", mismatches,
                 first, ha[first], enn_philox_normal(seed, stream, first));
    for (uint32_t i = 0; i < 101; i++) {
        float want = 0.5f + 0.01f * enn_philox_normal(seed, stream, 4001 + i);
        cr_assert(!memcmp(&want, &hs[i], 4), "slice element %u: %.9g vs %.9g", i, hs[i], want);
    }
    for (uint32_t i = 0; i < 103; i++) {
        float want = 0.5f + 0.01f * enn_philox_normal(seed, stream, 4000 + i);
        cr_assert(!memcmp(&want, &hs4[i], 4), "slice from 4000, element %u: %.9g vs %.9g", i, hs4[i], want);
    }
    for (uint32_t i = 0; i < 160; i++) {
        float want = 0.5f + 0.01f * enn_philox_normal(seed, stream, 4004 + i);
        cr_assert(!memcmp(&want, &hs16[i], 4), "slice from 4004, element %u: %.9g vs %.9g", i, hs16[i], want);
    }
    for (uint32_t i = 0; i < n; i++) {
        float want = -2.0f + 5.0f * enn_philox_uniform(seed, stream + 1, i);
        cr_assert(!memcmp(&want, &hu[i], 4), "uniform %u: %.9g vs %.9g", i, hu[i], want);
        cr_assert(hu[i] >= -2.0f && hu[i] < 3.0f);
    }
    /* Moments of 65536 samples: the mean's standard error is 1/256 = 0.0039 and the
     * variance's sqrt(2/n) = 0.0055; 5 standard errors cannot fail by chance (p < 1e-6)
     * and the stream is fixed anyway. Uniform on [-2, 3): mean 0.5, variance 25/12. */
    double mean, var;
    moments(ha, n, &mean, &var);
    cr_assert_lt(fabs(mean), 5 * 0.0039, "normal mean %g", mean);
    cr_assert_lt(fabs(var - 1), 5 * 0.0055, "normal variance %g", var);
    uint32_t tails = 0;
    for (uint32_t i = 0; i < n; i++) tails += fabsf(ha[i]) > 1.959964f;
    cr_assert_lt(fabs(tails / (double)n - 0.05), 5 * sqrt(0.05 * 0.95 / n), "P(|z| > 1.96) = %g", tails / (double)n);
    moments(hu, n, &mean, &var);
    cr_assert_lt(fabs(mean - 0.5), 5 * sqrt(25.0 / 12 / n), "uniform mean %g", mean);
    cr_assert_lt(fabs(var - 25.0 / 12), 5 * 25.0 / 12 * sqrt(0.8 / n), "uniform variance %g", var);

    free(ha), free(hb), free(hc), free(hu), free(hs), free(hs4), free(hs16);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, a), enn_buffer_destroy(ctx, b), enn_buffer_destroy(ctx, c);
    enn_buffer_destroy(ctx, u), enn_buffer_destroy(ctx, s), enn_buffer_destroy(ctx, s4), enn_buffer_destroy(ctx, s16);
    test_context_finish(ctx);
}

/* Truncated normal: bit for bit the host's, inside [-2, 2], and the moments of the
 * standard normal cut at 2: mean 0, variance 1 - 4 phi(2) / (Phi(2) - Phi(-2)) = 0.773741
 * (standard error of the variance ~ 0.0045 for 65536 samples of this bounded law). */
Test(philox, device_truncated_normal)
{
    enn_context *ctx = test_context();
    const uint32_t n = 1 << 16;
    enn_buffer *b = tu_buffer(ctx, NULL, n);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_random_truncated_normal(rec, enn_view_of(b), n, 5, 6, 0, 0.0f, 1.0f));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    float *x = tu_download(ctx, b, n);
    uint32_t retried = 0;
    for (uint32_t i = 0; i < n; i++) {
        float want = enn_philox_truncated_normal(5, 6, i);
        cr_assert(!memcmp(&want, &x[i], 4), "element %u: device %.9g, host %.9g", i, x[i], want);
        cr_assert(fabsf(x[i]) <= 2.0f);
        retried += x[i] != enn_philox_normal(5, 6, i);
    }
    /* About 4.55% of first draws fall outside [-2, 2] and are redrawn. */
    cr_assert_lt(fabs(retried / (double)n - 0.0455), 5 * sqrt(0.0455 * 0.9545 / n), "redrawn fraction %g",
                 retried / (double)n);
    double mean, var;
    moments(x, n, &mean, &var);
    cr_assert_lt(fabs(mean), 5 * 0.0035, "mean %g", mean);
    cr_assert_lt(fabs(var - 0.773741), 5 * 0.0045, "variance %g", var);
    free(x);
    enn_buffer_destroy(ctx, b);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
