/* Launchers of shaders/random.comp. */
#include "ops/random.h"
#include "ops/launch.h"

#define RANDOM_LOCAL 64

typedef struct random_push {
    uint32_t n, dist;
    uint32_t seed[2], stream[2];
    uint32_t first_index;
    float a, b;
    uint32_t per_invocation;
} random_push;

static enn_status random_fill(enn_recorder *rec, enn_view out, uint32_t n, uint32_t dist, uint64_t seed,
                              uint64_t stream, uint32_t first_index, float a, float b, const char *name)
{
    if (n == 0) return ENN_OK;
    ENN_TRY(enn_ops_check_view(name, "out", out, (uint64_t)n * 4));
    if ((uint64_t)first_index + n > 0x100000000ull)
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "%s: indices %u + %u pass the 2^32 of a stream", name, first_index, n);
    const uint32_t spec[1] = {RANDOM_LOCAL};
    const enn_pipeline *p;
    /* Normals from a stream position that is a multiple of 4: four per Philox block; on
     * CPU devices, where n is a multiple of 16, four blocks at a time (not with
     * ENN_DISABLE_NOISE_BLOCKS; the same values). */
    const enn_context *ctx = enn_recorder_context(rec);
    int cpu = ctx->caps.device_type == ENN_DEVICE_CPU;
    int four = dist == 0 && first_index % 4 == 0;
    int sixteen = four && cpu && n % 16 == 0 && !ctx->env.disable_noise_blocks;
    ENN_TRY(enn_ops_pipeline(rec, sixteen ? "random_normal16" : four ? "random_normal4" : "random", 1,
                             sizeof(random_push), spec, 1, &p));
    /* CPU devices: 32 consecutive elements per invocation (lavapipe spends ~10 ns on each
     * invocation; a million of them, the per-sample trace's initial state, took 13 ms). */
    uint32_t per = cpu ? 32 : 1;
    uint32_t group = sixteen ? 16 : four ? 4 : 1;
    per = per > group ? per / group : 1; /* groups of `group` elements per invocation */
    random_push push = {.n = n, .dist = dist, .first_index = first_index, .a = a, .b = b, .per_invocation = per};
    enn_ops_split64(seed, push.seed);
    enn_ops_split64(stream, push.stream);
    uint64_t units = ((uint64_t)n + group - 1) / group;
    uint32_t gx = 1, gy = 1;
    ENN_TRY(enn_ops_grid(rec, (units + per - 1) / per, RANDOM_LOCAL, &gx, &gy));
    enn_binding bind[1] = {enn_bind(out, (VkDeviceSize)n * 4, ENN_ACCESS_WRITE)};
    return enn_record_dispatch(rec, p, bind, 1, &push, gx, gy, 1, name);
}

enn_status enn_random_normal(enn_recorder *rec, enn_view out, uint32_t n, uint64_t seed, uint64_t stream,
                             uint32_t first_index, float mean, float std)
{
    return random_fill(rec, out, n, 0, seed, stream, first_index, mean, std, "random_normal");
}

enn_status enn_random_uniform(enn_recorder *rec, enn_view out, uint32_t n, uint64_t seed, uint64_t stream,
                              uint32_t first_index, float lo, float hi)
{
    return random_fill(rec, out, n, 1, seed, stream, first_index, lo, hi, "random_uniform");
}

enn_status enn_random_truncated_normal(enn_recorder *rec, enn_view out, uint32_t n, uint64_t seed, uint64_t stream,
                                       uint32_t first_index, float mean, float std)
{
    return random_fill(rec, out, n, 2, seed, stream, first_index, mean, std, "random_truncated_normal");
}
