/* Uploads and downloads, byte-exact, from 1 byte to 256 MiB, at odd offsets and over
 * partial ranges, through both transfer paths: the mapped one (unified memory: lavapipe,
 * integrated GPUs) and the staging one (ENN_FORCE_STAGING=1, what discrete GPUs use; it
 * moves data in 16 MiB chunks, so the larger sizes cross chunk boundaries at odd
 * offsets). Each write is checked against a host model of the whole buffer, so bytes
 * written outside the asked-for range are caught too. Synchronization validation is on,
 * so a transfer that races submitted work is reported even where lavapipe's serial
 * execution would hide it. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "runtime_helpers.h"

#define MIB ((size_t)1 << 20)

typedef enum { PATH_MAPPED, PATH_STAGING } transfer_path;

static enn_context *context_for(transfer_path path)
{
    test_sync_validation();
    if (path == PATH_STAGING) test_setenv("ENN_FORCE_STAGING", "1");
    enn_context *ctx = test_context();
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    if (path == PATH_MAPPED && !caps.unified_memory) {
        enn_context_destroy(ctx);
        cr_skip_test("%s has no unified memory: no mapped path to test", caps.device_name);
    }
    return ctx;
}

static void expect_path(const enn_buffer *buf, transfer_path path)
{
    if (path == PATH_MAPPED) cr_assert_not_null(buf->mapped, "mapped path wanted, the buffer is not mapped");
    else cr_assert_null(buf->mapped, "staging path wanted, the buffer is mapped");
}

/* A buffer of `total` bytes holding pattern 1; then pattern 2 written to [off, off+size);
 * the whole buffer read back and checked; then a partial range of the written part read
 * back at an odd offset. */
static void roundtrip(enn_context *ctx, transfer_path path, size_t total, size_t off, size_t size)
{
    cr_assert_leq(off + size, total);
    uint8_t *host = malloc(total), *back = malloc(total);
    cr_assert(host && back, "host memory for %zu bytes", total);
    enn_buffer *buf;
    ENN_ASSERT_OK(enn_buffer_create(ctx, total, &buf));
    expect_path(buf, path);
    cr_assert_eq(enn_buffer_size(buf), total);

    test_pattern_fill(host, total, 0, 1);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, buf, 0, host, total));
    test_pattern_fill(host + off, size, off, 2);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, buf, off, host + off, size));

    memset(back, 0xA5, total);
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, 0, back, total));
    size_t bad = test_pattern_check(back, off, 0, 1);
    cr_assert_eq(bad, off, "size %zu at %zu: byte %zu before the range was changed", size, off, bad);
    bad = test_pattern_check(back + off, size, off, 2);
    cr_assert_eq(bad, size, "size %zu at %zu: byte %zu of the range is wrong", size, off, off + bad);
    bad = test_pattern_check(back + off + size, total - off - size, off + size, 1);
    cr_assert_eq(bad, total - off - size, "size %zu at %zu: byte %zu after the range was changed", size, off,
                 off + size + bad);

    /* Partial read of the middle of the written range. */
    if (size >= 3) {
        size_t poff = off + size / 3, plen = size - size / 3 - 1;
        memset(back, 0x5A, plen + 1);
        ENN_ASSERT_OK(enn_buffer_download(ctx, buf, poff, back, plen));
        bad = test_pattern_check(back, plen, poff, 2);
        cr_assert_eq(bad, plen, "partial read [%zu, +%zu): byte %zu is wrong", poff, plen, poff + bad);
        cr_assert_eq(back[plen], 0x5A, "download wrote past the %zu bytes asked for", plen);
    }
    enn_buffer_destroy(ctx, buf);
    free(host);
    free(back);
}

/* 1 byte .. 64 MiB + 5, each at an odd offset with a tail after it. */
static void sizes(transfer_path path)
{
    enn_context *ctx = context_for(path);
    const size_t sz[] = {1, 3, 255, 4097, MIB + 7, 16 * MIB + 1, 64 * MIB + 5};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        roundtrip(ctx, path, sz[i], 0, sz[i]);                 /* the whole buffer */
        roundtrip(ctx, path, sz[i] + 3 + 5, 3, sz[i]);         /* odd offset, 5-byte tail */
    }
    test_context_finish(ctx);
}

/* The largest case once per path: a 256 MiB buffer (a dedicated block) uploaded and
 * downloaded whole (roundtrip's background pattern), with 1 MiB + 3 at an odd offset
 * near the end rewritten and read back partially. */
static void big(transfer_path path)
{
    enn_context *ctx = context_for(path);
    roundtrip(ctx, path, 256 * MIB, 255 * MIB - 11, MIB + 3);
    test_context_finish(ctx);
}

Test(runtime_transfer, mapped_sizes) { sizes(PATH_MAPPED); }
Test(runtime_transfer, staging_sizes) { sizes(PATH_STAGING); }
Test(runtime_transfer, mapped_256mib) { big(PATH_MAPPED); }
Test(runtime_transfer, staging_256mib) { big(PATH_STAGING); }

/* Host access waits for submitted work: a fill submitted but not waited for is seen by
 * the very next download, and an upload made right after does not race the fill. */
static void after_submit(transfer_path path)
{
    enn_context *ctx = context_for(path);
    const size_t bytes = 4 * MIB;
    enn_buffer *buf;
    ENN_ASSERT_OK(enn_buffer_create(ctx, bytes, &buf));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_record_fill(rec, buf, 0, 0, 0x01020304u));
    ENN_ASSERT_OK(enn_recorder_submit(rec));
    uint32_t *back = malloc(bytes);
    cr_assert_not_null(back);
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, 0, back, bytes));
    for (size_t i = 0; i < bytes / 4; i++) cr_assert_eq(back[i], 0x01020304u, "word %zu = %#x", i, back[i]);

    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_record_fill(rec, buf, 0, 0, 0xdeadbeefu));
    ENN_ASSERT_OK(enn_recorder_submit(rec));
    const uint32_t word = 7;
    ENN_ASSERT_OK(enn_buffer_upload(ctx, buf, 8, &word, 4)); /* must land after the fill */
    ENN_ASSERT_OK(enn_recorder_wait(rec));
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, 0, back, 16));
    cr_expect_eq(back[0], 0xdeadbeefu);
    cr_expect_eq(back[2], 7u, "the upload was overwritten by the fill submitted before it");
    cr_expect_eq(back[3], 0xdeadbeefu);
    free(back);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, buf);
    test_context_finish(ctx);
}

Test(runtime_transfer, mapped_waits_for_submitted_work) { after_submit(PATH_MAPPED); }
Test(runtime_transfer, staging_waits_for_submitted_work) { after_submit(PATH_STAGING); }

/* A step that stages two large inputs and a small readback (a language model's targets,
 * token ids and statistics) allocates staging memory in its first recording only: the
 * area that replaces an outgrown one holds the whole recording, not the one request. */
Test(runtime_transfer, staging_area_fits_the_next_step)
{
    enn_context *ctx = context_for(PATH_STAGING);
    const size_t big = 3 * MIB;
    uint8_t *host = malloc(big);
    cr_assert_not_null(host);
    test_pattern_fill(host, big, 0, 3);
    enn_buffer *a, *b, *c;
    ENN_ASSERT_OK(enn_buffer_create(ctx, big, &a));
    ENN_ASSERT_OK(enn_buffer_create(ctx, big, &b));
    ENN_ASSERT_OK(enn_buffer_create(ctx, 64, &c));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, c, 0, host, 64));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    for (int step = 0; step < 4; step++) {
        const void *back;
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        ENN_ASSERT_OK(enn_record_upload(rec, a, 0, host, big));
        ENN_ASSERT_OK(enn_record_upload(rec, b, 0, host, big));
        ENN_ASSERT_OK(enn_record_readback(rec, c, 0, 64, &back));
        ENN_ASSERT_OK(enn_recorder_run(rec));
        cr_assert_eq(memcmp(back, host, 64), 0, "step %d: the readback", step);
        uint32_t areas = enn_recorder_get_stats(rec).staging_areas;
        if (step == 0) cr_expect_geq(areas, 1, "the first step staged without an area");
        else cr_expect_eq(areas, 0, "step %d allocated %u staging areas (the last step's did not fit)", step, areas);
    }
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, a);
    enn_buffer_destroy(ctx, b);
    enn_buffer_destroy(ctx, c);
    free(host);
    test_context_finish(ctx);
}
