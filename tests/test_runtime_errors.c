/* Bad arguments: every public entry point (and the recorder and pipeline calls ops use)
 * refuses NULL handles, zero sizes, out-of-range offsets and impossible requests with
 * the right status and a message that names the problem, and the context keeps working
 * afterwards. Also impossible allocations: ENN_ERROR_OUT_OF_DEVICE_MEMORY, no change to
 * the allocator, and allocation, dispatch and download still correct after. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "harness.h"
#include "runtime_helpers.h"

/* The call returns `want`, and enn_last_error() (cleared before) contains `needle`. */
#define EXPECT_ERROR(call, want, needle)                                                                  \
    do {                                                                                                  \
        enn_error_clear();                                                                                \
        enn_status got_ = (call);                                                                         \
        cr_expect_eq(got_, (want), "%s returned %s, want %s (%s)", #call, enn_status_name(got_),          \
                     enn_status_name(want), enn_last_error());                                            \
        cr_expect(strstr(enn_last_error(), (needle)) != NULL, "%s: message \"%s\" does not mention \"%s\"", \
                  #call, enn_last_error(), (needle));                                                     \
    } while (0)

Test(runtime_errors, context_creation)
{
    enn_context_options opt = {.device = "no-such-device-42", .validation = 1};
    enn_context *ctx = (enn_context *)1;
    EXPECT_ERROR(enn_context_create(&opt, &ctx), ENN_ERROR_NO_DEVICE, "no-such-device-42");
    cr_expect_null(ctx, "a failed create left *out set");
    opt.device = "99";
    EXPECT_ERROR(enn_context_create(&opt, &ctx), ENN_ERROR_NO_DEVICE, "99");
    opt.device = "4294967296";
    EXPECT_ERROR(enn_context_create(&opt, &ctx), ENN_ERROR_NO_DEVICE, "4294967296");
    EXPECT_ERROR(enn_context_create(NULL, NULL), ENN_ERROR_INVALID_ARGUMENT, "out");
    enn_capabilities caps = {0};
    EXPECT_ERROR(enn_context_capabilities(NULL, &caps), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_context_vulkan_handles(NULL, NULL), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_context_wait_idle(NULL), ENN_ERROR_INVALID_ARGUMENT, "ctx");
    EXPECT_ERROR(enn_memory_get_stats(NULL, NULL), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_list_devices(NULL, 0, NULL), ENN_ERROR_INVALID_ARGUMENT, "count");
    cr_expect_eq(enn_context_validation_messages(NULL, NULL), 0);
    enn_context_destroy(NULL); /* ignored */
    cr_expect_eq(test_validation_count(), 0);
}

Test(runtime_errors, status_names)
{
    const enn_status all[] = {ENN_OK, ENN_ERROR_INVALID_ARGUMENT, ENN_ERROR_SHAPE, ENN_ERROR_OUT_OF_RANGE,
                              ENN_ERROR_OUT_OF_HOST_MEMORY, ENN_ERROR_OUT_OF_DEVICE_MEMORY, ENN_ERROR_NO_DEVICE,
                              ENN_ERROR_UNSUPPORTED, ENN_ERROR_DEVICE_LOST, ENN_ERROR_VULKAN, ENN_ERROR_IO,
                              ENN_ERROR_FORMAT, ENN_ERROR_INTERNAL};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *name = enn_status_name(all[i]);
        cr_expect(strncmp(name, "ENN_", 4) == 0 && strcmp(name, "ENN_ERROR_UNKNOWN") != 0, "status %d: %s", all[i], name);
        for (size_t j = 0; j < i; j++) cr_expect_str_neq(name, enn_status_name(all[j]));
    }
    cr_expect_str_eq(enn_status_name((enn_status)12345), "ENN_ERROR_UNKNOWN");
}

/* Allocation sites that name only what they were building still say what ran out. */
Test(runtime_errors, memory_messages)
{
    cr_expect_eq(enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "free list"), ENN_ERROR_OUT_OF_HOST_MEMORY);
    cr_expect_str_eq(enn_last_error(), "out of host memory: free list");
    enn_error(ENN_ERROR_OUT_OF_DEVICE_MEMORY, "%s", "staging buffer");
    cr_expect_str_eq(enn_last_error(), "out of device memory: staging buffer");
    /* No second prefix where the message already says it. */
    enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s", "x.safetensors");
    cr_expect_str_eq(enn_last_error(), "out of host memory reading x.safetensors");
    enn_vk_error(VK_ERROR_OUT_OF_DEVICE_MEMORY, "vkAllocateMemory");
    cr_expect_str_eq(enn_last_error(), "vkAllocateMemory failed: VK_ERROR_OUT_OF_DEVICE_MEMORY");
    enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating the memory manager");
    cr_expect_str_eq(enn_last_error(), "out of host memory: allocating the memory manager");
    /* Other statuses are left as written. */
    enn_error(ENN_ERROR_FORMAT, "free list");
    cr_expect_str_eq(enn_last_error(), "free list");
    /* The message may quote the previous one. */
    enn_error(ENN_ERROR_IO, "first");
    enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s, then %s", enn_last_error(), "second");
    cr_expect_str_eq(enn_last_error(), "out of host memory: first, then second");
    enn_error_clear();
}

Test(runtime_errors, buffers_and_transfers)
{
    enn_context *ctx = test_context();
    enn_buffer *buf = (enn_buffer *)1, *ok;
    EXPECT_ERROR(enn_buffer_create(ctx, 0, &buf), ENN_ERROR_INVALID_ARGUMENT, "zero");
    cr_expect_null(buf);
    EXPECT_ERROR(enn_buffer_create(NULL, 16, &buf), ENN_ERROR_INVALID_ARGUMENT, "ctx");
    EXPECT_ERROR(enn_buffer_create(ctx, 16, NULL), ENN_ERROR_INVALID_ARGUMENT, "out");
    ENN_ASSERT_OK(enn_buffer_create(ctx, 100, &ok));
    uint8_t host[256] = {0};
    EXPECT_ERROR(enn_buffer_upload(NULL, ok, 0, host, 4), ENN_ERROR_INVALID_ARGUMENT, "enn_buffer_upload");
    EXPECT_ERROR(enn_buffer_upload(ctx, NULL, 0, host, 4), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_buffer_upload(ctx, ok, 0, NULL, 4), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_buffer_upload(ctx, ok, 0, host, 0), ENN_ERROR_INVALID_ARGUMENT, "zero");
    EXPECT_ERROR(enn_buffer_upload(ctx, ok, 97, host, 4), ENN_ERROR_OUT_OF_RANGE, "100 bytes");
    EXPECT_ERROR(enn_buffer_upload(ctx, ok, 0, host, 101), ENN_ERROR_OUT_OF_RANGE, "100 bytes");
    EXPECT_ERROR(enn_buffer_upload(ctx, ok, 101, host, 1), ENN_ERROR_OUT_OF_RANGE, "100 bytes");
    EXPECT_ERROR(enn_buffer_upload(ctx, ok, SIZE_MAX, host, 1), ENN_ERROR_OUT_OF_RANGE, "100 bytes");
    EXPECT_ERROR(enn_buffer_upload(ctx, ok, 1, host, SIZE_MAX), ENN_ERROR_OUT_OF_RANGE, "100 bytes");
    EXPECT_ERROR(enn_buffer_download(NULL, ok, 0, host, 4), ENN_ERROR_INVALID_ARGUMENT, "enn_buffer_download");
    EXPECT_ERROR(enn_buffer_download(ctx, ok, 0, NULL, 4), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_buffer_download(ctx, ok, 0, host, 0), ENN_ERROR_INVALID_ARGUMENT, "zero");
    EXPECT_ERROR(enn_buffer_download(ctx, ok, 50, host, 51), ENN_ERROR_OUT_OF_RANGE, "100 bytes");
    EXPECT_ERROR(enn_buffer_download(ctx, ok, SIZE_MAX - 3, host, 8), ENN_ERROR_OUT_OF_RANGE, "100 bytes");
    EXPECT_ERROR(enn_buffer_vulkan(NULL, NULL, NULL, NULL), ENN_ERROR_INVALID_ARGUMENT, "buf");
    cr_expect_eq(enn_buffer_size(NULL), 0);
    enn_buffer_destroy(ctx, NULL); /* ignored */
    enn_buffer_destroy(NULL, ok);  /* ignored: no context to return it to */
    /* The exact edges are fine. */
    for (int i = 0; i < 100; i++) host[i] = (uint8_t)(i * 7 + 1);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, ok, 0, host, 100));
    uint8_t back[100];
    ENN_ASSERT_OK(enn_buffer_download(ctx, ok, 99, back, 1));
    cr_expect_eq(back[0], host[99]);
    enn_buffer_destroy(ctx, ok);
    test_context_finish(ctx);
}

Test(runtime_errors, pipelines)
{
    enn_context *ctx = test_context();
    const enn_pipeline *p = NULL;
    const uint32_t spec[1] = {64};
    enn_pipeline_desc d = {.shader = "no_such_kernel", .num_buffers = 2, .push_size = 16, .spec = spec, .spec_count = 1};
    EXPECT_ERROR(enn_pipeline_get(ctx, &d, &p), ENN_ERROR_INTERNAL, "no_such_kernel");
    d.shader = "elementwise";
    d.num_buffers = 17;
    EXPECT_ERROR(enn_pipeline_get(ctx, &d, &p), ENN_ERROR_INVALID_ARGUMENT, "elementwise");
    d.num_buffers = 2;
    d.push_size = 132;
    EXPECT_ERROR(enn_pipeline_get(ctx, &d, &p), ENN_ERROR_INVALID_ARGUMENT, "push");
    d.push_size = 16;
    EXPECT_ERROR(enn_pipeline_get(ctx, NULL, &p), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_pipeline_get(NULL, &d, &p), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_pipeline_get(ctx, &d, NULL), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    if (!caps.subgroup_size_control) {
        d.required_subgroup_size = caps.subgroup_size;
        EXPECT_ERROR(enn_pipeline_get(ctx, &d, &p), ENN_ERROR_UNSUPPORTED, "subgroup size");
        d.required_subgroup_size = 0;
    }
    enn_pipeline_stats st;
    enn_pipeline_get_stats(ctx, &st);
    cr_expect_eq(st.created, 0, "failed requests created %u pipelines", st.created);
    ENN_ASSERT_OK(enn_pipeline_get(ctx, &d, &p));
    const enn_pipeline *again = NULL;
    ENN_ASSERT_OK(enn_pipeline_get(ctx, &d, &again));
    cr_expect_eq(p, again, "the same description made a second pipeline");
    test_context_finish(ctx);
}

/* y = 3 x through a recorder that has just refused a series of bad requests. */
static void check_still_works(enn_context *ctx, enn_recorder *rec, const enn_pipeline *p)
{
    float x[256], y[256];
    for (int i = 0; i < 256; i++) x[i] = (float)i;
    enn_buffer *bx, *by;
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof x, &bx));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &by));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bx, 0, x, sizeof x));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_OUT(by), 256, 3, 0));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    ENN_ASSERT_OK(enn_buffer_download(ctx, by, 0, y, sizeof y));
    for (int i = 0; i < 256; i++) cr_assert_eq(y[i], 3.0f * x[i], "y[%d] = %g", i, y[i]);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, by);
}

Test(runtime_errors, recorder)
{
    enn_context *ctx = test_context();
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_buffer *x, *y;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4096, &x));
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4096, &y));
    enn_recorder *rec = NULL;
    EXPECT_ERROR(enn_recorder_create(NULL, &rec), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_recorder_create(ctx, NULL), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    test_axpby_push push = {1024, 0, 1, 0};
    enn_binding b[2] = {ENN_IN(x), ENN_OUT(y)};

    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 2, &push, 16, 1, 1, "early"), ENN_ERROR_INVALID_ARGUMENT,
                 "enn_recorder_begin");
    EXPECT_ERROR(enn_recorder_begin(NULL), ENN_ERROR_INVALID_ARGUMENT, "rec");
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    EXPECT_ERROR(enn_recorder_begin(rec), ENN_ERROR_INVALID_ARGUMENT, "already recording");
    EXPECT_ERROR(enn_record_dispatch(NULL, p, b, 2, &push, 16, 1, 1, "k"), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_record_dispatch(rec, NULL, b, 2, &push, 16, 1, 1, "k"), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERROR(enn_record_dispatch(rec, p, NULL, 2, &push, 16, 1, 1, "nobind"), ENN_ERROR_INVALID_ARGUMENT, "nobind");
    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 1, &push, 16, 1, 1, "onebind"), ENN_ERROR_INVALID_ARGUMENT,
                 "1 buffers bound, the kernel takes 2");
    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 3, &push, 16, 1, 1, "threebind"), ENN_ERROR_INVALID_ARGUMENT,
                 "takes 2");
    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 2, NULL, 16, 1, 1, "nopush"), ENN_ERROR_INVALID_ARGUMENT,
                 "push constants");
    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 2, &push, 0, 1, 1, "zerogroups"), ENN_ERROR_OUT_OF_RANGE,
                 "0 x 1 x 1 workgroups");
    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 2, &push, 1, 0, 1, "zerogroups"), ENN_ERROR_OUT_OF_RANGE, "workgroups");
    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 2, &push, 1, 1, 0, "zerogroups"), ENN_ERROR_OUT_OF_RANGE, "workgroups");
    EXPECT_ERROR(enn_record_dispatch(rec, p, b, 2, &push, caps.max_workgroup_count[0] + 1u, 1, 1, "toomany"),
                 ENN_ERROR_OUT_OF_RANGE, "workgroups");
    enn_binding bad[2] = {{NULL, 0, 0, ENN_ACCESS_READ}, ENN_OUT(y)};
    EXPECT_ERROR(enn_record_dispatch(rec, p, bad, 2, &push, 16, 1, 1, "nullbuf"), ENN_ERROR_INVALID_ARGUMENT, "NULL");
    bad[0] = (enn_binding){x, 4096, 0, ENN_ACCESS_READ}; /* starts at the end: empty */
    EXPECT_ERROR(enn_record_dispatch(rec, p, bad, 2, &push, 16, 1, 1, "past"), ENN_ERROR_OUT_OF_RANGE, "4096 bytes");
    bad[0] = (enn_binding){x, 256, 4096, ENN_ACCESS_READ}; /* runs past the end */
    EXPECT_ERROR(enn_record_dispatch(rec, p, bad, 2, &push, 16, 1, 1, "past"), ENN_ERROR_OUT_OF_RANGE, "4096 bytes");
    bad[0] = (enn_binding){x, 8192, 16, ENN_ACCESS_READ};
    EXPECT_ERROR(enn_record_dispatch(rec, p, bad, 2, &push, 16, 1, 1, "past"), ENN_ERROR_OUT_OF_RANGE, "8192");
    bad[0] = (enn_binding){x, 4, 256, ENN_ACCESS_READ}; /* misaligned start */
    if (caps.min_storage_buffer_offset_alignment > 4)
        EXPECT_ERROR(enn_record_dispatch(rec, p, bad, 2, &push, 16, 1, 1, "misaligned"), ENN_ERROR_INVALID_ARGUMENT,
                     "multiple of");
    EXPECT_ERROR(enn_record_fill(NULL, y, 0, 0, 0), ENN_ERROR_INVALID_ARGUMENT, "rec");
    EXPECT_ERROR(enn_record_fill(rec, y, 2, 16, 0), ENN_ERROR_INVALID_ARGUMENT, "multiples of 4");
    EXPECT_ERROR(enn_record_fill(rec, y, 0, 6, 0), ENN_ERROR_INVALID_ARGUMENT, "multiples of 4");
    EXPECT_ERROR(enn_record_fill(rec, y, 4000, 100, 0), ENN_ERROR_OUT_OF_RANGE, "4096 bytes");
    EXPECT_ERROR(enn_record_copy(rec, x, 0, y, 0, 0), ENN_ERROR_INVALID_ARGUMENT, "zero");
    EXPECT_ERROR(enn_record_copy(rec, x, 0, y, 1, 4096), ENN_ERROR_OUT_OF_RANGE, "destination");
    EXPECT_ERROR(enn_record_copy(rec, x, 8, y, 0, 4096), ENN_ERROR_OUT_OF_RANGE, "source");
    EXPECT_ERROR(enn_record_copy(rec, x, 0, x, 100, 200), ENN_ERROR_INVALID_ARGUMENT, "overlap");
    enn_recorder_stats st = enn_recorder_get_stats(rec);
    cr_expect_eq(st.dispatches + st.transfers, 0, "refused commands were counted");
    /* A binding wider than the device binds at once. */
    if (caps.max_storage_buffer_range < ((uint64_t)1 << 30)) {
        enn_buffer *wide;
        ENN_ASSERT_OK(enn_buffer_create(ctx, caps.max_storage_buffer_range + 256, &wide));
        enn_binding w[2] = {ENN_IN(wide), ENN_OUT(y)};
        EXPECT_ERROR(enn_record_dispatch(rec, p, w, 2, &push, 16, 1, 1, "wide"), ENN_ERROR_UNSUPPORTED,
                     "binds at most");
        enn_buffer_destroy(ctx, wide);
    }
    ENN_ASSERT_OK(enn_recorder_run(rec)); /* the empty recording */
    EXPECT_ERROR(enn_recorder_submit(NULL), ENN_ERROR_INVALID_ARGUMENT, "rec");
    EXPECT_ERROR(enn_recorder_wait(NULL), ENN_ERROR_INVALID_ARGUMENT, "rec");
    cr_expect_eq(enn_recorder_timings(NULL, NULL), 0);
    enn_recorder_destroy(NULL); /* ignored */

    check_still_works(ctx, rec, p);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, x);
    enn_buffer_destroy(ctx, y);
    test_context_finish(ctx);
}

/* Impossible sizes fail cleanly, leave the allocator as it was, and the context works. */
Test(runtime_errors, out_of_device_memory)
{
    enn_context *ctx = test_context();
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_buffer *keep;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 1000, &keep));
    enn_memory_stats before, after;
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &before));

    const size_t huge[] = {(size_t)1 << 40,                  /* 1 TiB */
                           ((size_t)1 << 40) + 1,
                           (size_t)1 << 63,
                           SIZE_MAX - 100,                   /* rounding up to the alignment overflows */
                           SIZE_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        enn_buffer *buf = (enn_buffer *)1;
        enn_error_clear();
        enn_status s = enn_buffer_create(ctx, huge[i], &buf);
        cr_expect_eq(s, ENN_ERROR_OUT_OF_DEVICE_MEMORY, "%zu bytes: %s (%s)", huge[i], enn_status_name(s),
                     enn_last_error());
        cr_expect_null(buf, "%zu bytes: *out is not NULL", huge[i]);
        cr_expect_neq(enn_last_error()[0], '\0', "%zu bytes: no message", huge[i]);
        cr_log_info("%zu bytes: %s", huge[i], enn_last_error());
        if (s == ENN_OK) enn_buffer_destroy(ctx, buf);
    }
    char tib[32];
    snprintf(tib, sizeof tib, "%zu", (size_t)1 << 40);
    enn_buffer *buf;
    EXPECT_ERROR(enn_buffer_create(ctx, (size_t)1 << 40, &buf), ENN_ERROR_OUT_OF_DEVICE_MEMORY, tib);
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &after));
    cr_expect_eq(after.live_buffers, before.live_buffers);
    cr_expect_eq(after.used_bytes, before.used_bytes);
    cr_expect_eq(after.block_count, before.block_count);
    cr_expect_eq(after.block_bytes, before.block_bytes);

    check_still_works(ctx, rec, p);
    uint8_t host[1000], back[1000];
    for (int i = 0; i < 1000; i++) host[i] = (uint8_t)(i ^ 0x5a);
    ENN_ASSERT_OK(enn_buffer_upload(ctx, keep, 0, host, sizeof host));
    ENN_ASSERT_OK(enn_buffer_download(ctx, keep, 0, back, sizeof back));
    cr_expect_eq(memcmp(host, back, sizeof host), 0);
    enn_buffer_destroy(ctx, keep);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
