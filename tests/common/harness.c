#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Counted outside the context so that messages raised while it is destroyed (leaked
 * objects, for one) still fail the test. */
static atomic_uint validation_count;
static char validation_first[2048];

static void on_message(void *user, const char *message)
{
    (void)user;
    fprintf(stderr, "[validation] %s\n", message);
    if (atomic_fetch_add(&validation_count, 1) == 0)
        snprintf(validation_first, sizeof validation_first, "%s", message);
}

const char *test_device(void)
{
    const char *d = getenv("ENN_TEST_DEVICE");
    return d && d[0] ? d : "llvmpipe";
}

unsigned test_validation_count(void) { return atomic_load(&validation_count); }

enn_context *test_context(void)
{
    enn_context_options opt = {.device = test_device(), .validation = 1, .validation_callback = on_message};
    enn_context *ctx = NULL;
    enn_status s = enn_context_create(&opt, &ctx);
    cr_assert_eq(s, ENN_OK, "enn_context_create(%s): %s: %s", test_device(), enn_status_name(s), enn_last_error());
    return ctx;
}

enn_context *test_context_with(const enn_context_options *options)
{
    enn_context_options opt = *options;
    if (!opt.device) opt.device = test_device();
    opt.validation = 1;
    if (!opt.validation_callback) opt.validation_callback = on_message;
    enn_context *ctx = NULL;
    enn_status s = enn_context_create(&opt, &ctx);
    cr_assert_eq(s, ENN_OK, "enn_context_create(%s): %s: %s", opt.device, enn_status_name(s), enn_last_error());
    return ctx;
}

void test_context_finish(enn_context *ctx)
{
    enn_context_destroy(ctx);
    uint32_t n = atomic_load(&validation_count);
    cr_assert_eq(n, 0, "%u validation message(s); first: %s", n, validation_first);
}

uint64_t test_rand_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int test_all_bytes(const void *p, size_t n, unsigned char value)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != value) return 0;
    return 1;
}

double test_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

double test_rand_uniform(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * ((test_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0));
}

void test_random_batch(uint64_t seed, float *x, size_t x_count, double range, uint32_t *labels, uint32_t batch,
                       uint32_t classes)
{
    uint64_t state = seed;
    for (size_t k = 0; k < x_count; k++) x[k] = (float)test_rand_uniform(&state, -range, range);
    for (size_t k = 0; k < batch; k++) labels[k] = (uint32_t)(test_rand_u64(&state) % classes);
}
