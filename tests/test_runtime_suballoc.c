/* The sub-allocator under churn: hundreds of buffers of random sizes, some above half a
 * 64 MiB block (those get blocks of their own), freed in random order with new ones
 * allocated into the holes. Checked against the allocator's own claims: live ranges of
 * one VkBuffer never overlap, offsets honour the device's binding alignment, every
 * buffer keeps the bytes written to it, and the statistics return to zero with at most
 * one empty block kept for reuse. */
#include <stdlib.h>
#include <string.h>

#include "enn_vulkan.h"
#include "harness.h"
#include "runtime_helpers.h"

#define MIB ((size_t)1 << 20)

typedef struct live_buffer {
    enn_buffer *buf;
    size_t size;
    uint32_t seed;
} live_buffer;

typedef struct placed {
    VkBuffer vk;
    VkDeviceSize offset, size;
    size_t index;
} placed;

static int by_place(const void *pa, const void *pb)
{
    const placed *a = pa, *b = pb;
    if (a->vk != b->vk) return (uintptr_t)a->vk < (uintptr_t)b->vk ? -1 : 1;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static size_t random_size(uint64_t *rng, size_t i)
{
    /* A few fixed sizes at the edges of the block policy, then mostly small ones. */
    if (i == 5) return 32 * MIB;            /* exactly half a block: still sub-allocated */
    if (i == 17) return 32 * MIB + 1;       /* just above: a block of its own */
    uint64_t r = test_rand_u64(rng) % 1000;
    if (i % 64 == 40) return 32 * MIB + 1 + test_rand_u64(rng) % (8 * MIB); /* dedicated */
    if (r < 70) return 64 * 1024 + test_rand_u64(rng) % (2 * MIB);
    return 1 + test_rand_u64(rng) % (64 * 1024);
}

static void allocate(enn_context *ctx, live_buffer *lb, size_t size, uint32_t seed, uint8_t *scratch)
{
    lb->size = size;
    lb->seed = seed;
    ENN_ASSERT_OK(enn_buffer_create(ctx, size, &lb->buf));
    test_pattern_fill(scratch, size, 0, seed);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, lb->buf, 0, scratch, size));
}

static void release(enn_context *ctx, live_buffer *lb)
{
    enn_buffer_destroy(ctx, lb->buf);
    lb->buf = NULL;
}

/* Overlap, alignment, dedicated blocks, and used_bytes of the live set; returns the
 * number of buffers with blocks of their own. */
static size_t check_layout(enn_context *ctx, const live_buffer *lbs, size_t n)
{
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    VkDeviceSize align = caps.min_storage_buffer_offset_alignment > 256 ? caps.min_storage_buffer_offset_alignment : 256;
    placed *p = calloc(n, sizeof *p);
    cr_assert_not_null(p);
    size_t live = 0;
    uint64_t reserved = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lbs[i].buf) continue;
        ENN_ASSERT_OK(enn_buffer_vulkan(lbs[i].buf, &p[live].vk, &p[live].offset, &p[live].size));
        cr_assert_eq(p[live].size, lbs[i].size, "buffer %zu reports %llu bytes, made with %zu", i,
                     (unsigned long long)p[live].size, lbs[i].size);
        cr_assert_eq(p[live].offset % align, 0, "buffer %zu at offset %llu, not a multiple of %llu", i,
                     (unsigned long long)p[live].offset, (unsigned long long)align);
        p[live].index = i;
        reserved += (lbs[i].size + align - 1) / align * align;
        live++;
    }
    qsort(p, live, sizeof *p, by_place);
    for (size_t k = 0; k + 1 < live; k++)
        if (p[k].vk == p[k + 1].vk)
            cr_assert_leq(p[k].offset + p[k].size, p[k + 1].offset,
                          "buffers %zu [%llu, +%llu) and %zu [%llu, +%llu) overlap", p[k].index,
                          (unsigned long long)p[k].offset, (unsigned long long)p[k].size, p[k + 1].index,
                          (unsigned long long)p[k + 1].offset, (unsigned long long)p[k + 1].size);
    /* Above half a block: alone in its VkBuffer, at offset 0. */
    size_t dedicated = 0;
    for (size_t k = 0; k < live; k++) {
        if (p[k].size <= ENN_BLOCK_BYTES / 2) continue;
        dedicated++;
        cr_assert_eq(p[k].offset, 0, "dedicated buffer %zu is at offset %llu", p[k].index,
                     (unsigned long long)p[k].offset);
        int shared = (k > 0 && p[k - 1].vk == p[k].vk) || (k + 1 < live && p[k + 1].vk == p[k].vk);
        cr_assert(!shared, "buffer %zu of %llu bytes shares its block", p[k].index, (unsigned long long)p[k].size);
    }
    enn_memory_stats st;
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_assert_eq(st.live_buffers, live);
    cr_assert_eq(st.used_bytes, reserved, "used_bytes %llu, the live buffers rounded to %llu take %llu",
                 (unsigned long long)st.used_bytes, (unsigned long long)align, (unsigned long long)reserved);
    cr_assert_geq(st.block_bytes, st.used_bytes);
    cr_assert_geq(st.peak_used_bytes, st.used_bytes);
    free(p);
    return dedicated;
}

static void check_data(enn_context *ctx, const live_buffer *lbs, size_t n, uint8_t *scratch)
{
    for (size_t i = 0; i < n; i++) {
        if (!lbs[i].buf) continue;
        memset(scratch, 0, lbs[i].size);
        ENN_ASSERT_OK(enn_buffer_download(ctx, lbs[i].buf, 0, scratch, lbs[i].size));
        size_t bad = test_pattern_check(scratch, lbs[i].size, 0, lbs[i].seed);
        cr_assert_eq(bad, lbs[i].size, "buffer %zu (%zu bytes): byte %zu was overwritten", i, lbs[i].size, bad);
    }
}

static void shuffle(size_t *order, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = test_rand_u64(rng) % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

static void churn(int staging, size_t first, size_t second)
{
    if (staging) test_setenv("ENN_FORCE_STAGING", "1");
    enn_context *ctx = test_context();
    uint64_t rng = 12345;
    size_t n = first + second;
    live_buffer *lbs = calloc(n, sizeof *lbs);
    size_t *order = calloc(n, sizeof *order);
    uint8_t *scratch = malloc(41 * MIB);
    cr_assert(lbs && order && scratch);

    /* 1: allocate `first` buffers, each holding its own pattern. */
    for (size_t i = 0; i < first; i++) allocate(ctx, &lbs[i], random_size(&rng, i), (uint32_t)i + 1, scratch);
    size_t dedicated = check_layout(ctx, lbs, first);
    cr_assert_geq(dedicated, 3, "only %zu buffers above half a block: the test lost its point", dedicated);
    check_data(ctx, lbs, first, scratch);
    enn_memory_stats st;
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_log_info("%zu buffers (%zu with blocks of their own): %u blocks, %llu MiB of blocks, %llu MiB used", first, dedicated, st.block_count,
                (unsigned long long)(st.block_bytes >> 20), (unsigned long long)(st.used_bytes >> 20));

    /* 2: free a random half, then allocate `second` more into the holes. */
    shuffle(order, first, &rng);
    for (size_t k = 0; k < first / 2; k++) release(ctx, &lbs[order[k]]);
    check_layout(ctx, lbs, first);
    check_data(ctx, lbs, first, scratch);
    for (size_t i = first; i < n; i++) allocate(ctx, &lbs[i], random_size(&rng, i), (uint32_t)i + 1, scratch);
    check_layout(ctx, lbs, n);
    check_data(ctx, lbs, n, scratch);

    /* 3: free everything in random order, checking the survivors twice on the way. */
    shuffle(order, n, &rng);
    for (size_t k = 0; k < n; k++) {
        if (lbs[order[k]].buf) release(ctx, &lbs[order[k]]);
        if (k == n / 3 || k == 2 * n / 3) {
            check_layout(ctx, lbs, n);
            check_data(ctx, lbs, n, scratch);
        }
    }
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_expect_eq(st.live_buffers, 0);
    cr_expect_eq(st.used_bytes, 0);
    cr_expect_leq(st.block_count, 1, "%u blocks left; at most one empty block may be kept", st.block_count);
    cr_expect_leq(st.block_bytes, ENN_BLOCK_BYTES, "%llu bytes of blocks left", (unsigned long long)st.block_bytes);
    cr_expect_eq(st.block_count == 0, st.block_bytes == 0);

    /* The kept block is reused, not leaked: a new small buffer adds no block. */
    uint32_t blocks_before = st.block_count;
    live_buffer again;
    allocate(ctx, &again, 1000, 999, scratch);
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_expect_eq(st.block_count, blocks_before ? blocks_before : 1);
    check_data(ctx, &again, 1, scratch);
    release(ctx, &again);

    free(lbs);
    free(order);
    free(scratch);
    test_context_finish(ctx);
}

Test(runtime_suballoc, churn_mapped) { churn(0, 400, 150); }
Test(runtime_suballoc, churn_staging) { churn(1, 250, 100); }

/* Freeing buffers in the opposite order to a first-fit layout merges neighbours on both
 * sides: after all small buffers of a block are gone, one buffer of almost the whole
 * block fits again in the same block. */
Test(runtime_suballoc, holes_merge)
{
    enn_context *ctx = test_context();
    enn_buffer *b[64];
    for (int i = 0; i < 64; i++) ENN_ASSERT_OK(enn_buffer_create(ctx, 256 * 1024, &b[i]));
    VkBuffer first_block;
    ENN_ASSERT_OK(enn_buffer_vulkan(b[0], &first_block, NULL, NULL));
    /* Even ones, then odd ones: every free after the first half merges on both sides. */
    for (int i = 0; i < 64; i += 2) enn_buffer_destroy(ctx, b[i]);
    for (int i = 1; i < 64; i += 2) enn_buffer_destroy(ctx, b[i]);
    enn_memory_stats st;
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_assert_eq(st.block_count, 1);
    enn_buffer *whole;
    ENN_ASSERT_OK(enn_buffer_create(ctx, ENN_BLOCK_BYTES / 2, &whole));
    enn_buffer *rest;
    ENN_ASSERT_OK(enn_buffer_create(ctx, ENN_BLOCK_BYTES / 2, &rest));
    VkBuffer vk1, vk2;
    ENN_ASSERT_OK(enn_buffer_vulkan(whole, &vk1, NULL, NULL));
    ENN_ASSERT_OK(enn_buffer_vulkan(rest, &vk2, NULL, NULL));
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_expect_eq(st.block_count, 1, "two half-block buffers did not fit the emptied block");
    cr_expect_eq(vk1, first_block);
    cr_expect_eq(vk2, first_block);
    enn_buffer_destroy(ctx, whole);
    enn_buffer_destroy(ctx, rest);
    test_context_finish(ctx);
}
