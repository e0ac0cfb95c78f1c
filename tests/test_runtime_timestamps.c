/* Per-dispatch GPU timestamps: with timestamps on, enn_recorder_timings lists every
 * dispatch name once, with the number of dispatches of that name and a non-negative,
 * finite time, also when the recording spans several submissions; with them off, or
 * switched off by ENN_DISABLE_TIMESTAMPS, it lists nothing. Times are printed, not
 * asserted. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "runtime_helpers.h"

enum { N = 4096 };

/* Records `a` dispatches named "scale_a", `b` named "scale_b" and one fill (transfers
 * are not timed), alternating, then runs; returns the number of timing entries. */
static uint32_t record_named(enn_context *ctx, enn_recorder *rec, uint32_t a, uint32_t b, const enn_timing **out)
{
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_buffer *x, *y, *z;
    ENN_ASSERT_OK(enn_buffer_create(ctx, N * 4, &x));
    ENN_ASSERT_OK(enn_buffer_create(ctx, N * 4, &y));
    ENN_ASSERT_OK(enn_buffer_create(ctx, N * 4, &z));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_record_fill(rec, x, 0, 0, 0));
    test_axpby_push push = {N, 0, 1.0f, 1.0f};
    enn_binding ba[2] = {ENN_IN(x), ENN_INOUT(y)}, bb[2] = {ENN_IN(x), ENN_INOUT(z)};
    for (uint32_t i = 0; i < a || i < b; i++) {
        if (i < a) ENN_ASSERT_OK(enn_record_dispatch(rec, p, ba, 2, &push, N / TEST_AXPBY_LOCAL, 1, 1, "scale_a"));
        if (i < b) ENN_ASSERT_OK(enn_record_dispatch(rec, p, bb, 2, &push, N / TEST_AXPBY_LOCAL, 1, 1, "scale_b"));
    }
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_buffer_destroy(ctx, x);
    enn_buffer_destroy(ctx, y);
    enn_buffer_destroy(ctx, z);
    return enn_recorder_timings(rec, out);
}

static void expect_timings(const enn_timing *t, uint32_t count, uint32_t a, uint32_t b)
{
    cr_assert_eq(count, 2, "%u timing entries, want 2 (scale_a, scale_b)", count);
    uint32_t seen_a = 0, seen_b = 0;
    for (uint32_t i = 0; i < count; i++) {
        cr_log_info("%s: %u dispatches, %.4f ms", t[i].name, t[i].count, t[i].gpu_ms);
        cr_expect(isfinite(t[i].gpu_ms) && t[i].gpu_ms >= 0, "%s: time %g", t[i].name, t[i].gpu_ms);
        if (!strcmp(t[i].name, "scale_a")) seen_a += t[i].count;
        else if (!strcmp(t[i].name, "scale_b")) seen_b += t[i].count;
        else cr_expect_fail("unexpected timing entry \"%s\"", t[i].name);
    }
    cr_expect_eq(seen_a, a);
    cr_expect_eq(seen_b, b);
}

static enn_context *timestamps_context(uint32_t cap)
{
    test_sync_validation();
    enn_context_options opt = {.max_dispatches_per_submit = cap};
    enn_context *ctx = test_context_with(&opt);
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    if (!caps.timestamps) {
        enn_context_destroy(ctx);
        cr_skip_test("%s has no timestamps on its compute queue", caps.device_name);
    }
    cr_expect_gt(caps.timestamp_period_ns, 0);
    return ctx;
}

Test(runtime_timestamps, names_counts_times)
{
    enn_context *ctx = timestamps_context(0);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_recorder_set_timestamps(rec, 1);
    const enn_timing *t;
    uint32_t count = record_named(ctx, rec, 5, 3, &t);
    expect_timings(t, count, 5, 3);
    /* A second recording starts its timings afresh. */
    count = record_named(ctx, rec, 2, 7, &t);
    expect_timings(t, count, 2, 7);
    /* Off from the next begin on. */
    enn_recorder_set_timestamps(rec, 0);
    count = record_named(ctx, rec, 2, 2, &t);
    cr_expect_eq(count, 0, "timestamps off, yet %u timing entries", count);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

/* 40 + 33 timed dispatches, 6 commands per submission: 13 submissions whose query
 * results are gathered together. */
Test(runtime_timestamps, across_submissions)
{
    enn_context *ctx = timestamps_context(6);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_recorder_set_timestamps(rec, 1);
    const enn_timing *t;
    uint32_t count = record_named(ctx, rec, 40, 33, &t);
    cr_expect_eq(enn_recorder_get_stats(rec).submits, (40 + 33 + 1 + 5) / 6);
    expect_timings(t, count, 40, 33);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}

Test(runtime_timestamps, disabled_by_switch)
{
    test_setenv("ENN_DISABLE_TIMESTAMPS", "1");
    enn_context *ctx = test_context();
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    cr_expect_eq(caps.timestamps, 0);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    enn_recorder_set_timestamps(rec, 1);
    const enn_timing *t;
    cr_expect_eq(record_named(ctx, rec, 3, 3, &t), 0);
    enn_recorder_destroy(rec);
    test_context_finish(ctx);
}
