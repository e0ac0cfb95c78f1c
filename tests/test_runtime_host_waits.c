/* The context's count of host waits (what `enn bench train` reports as host
 * synchronisations per step) and the sub-allocator's peak reset. Each count below follows
 * from the rule in core/context.h: one per time the host blocks on a fence. */
#include <stdlib.h>

#include "core/memory.h"
#include "harness.h"
#include "runtime_helpers.h"

#define N 1024

static enn_context *make_context(int staging, uint32_t cap)
{
    if (staging) test_setenv("ENN_FORCE_STAGING", "1");
    enn_context_options opt = {.max_dispatches_per_submit = cap};
    return test_context_with(&opt);
}

/* A recording split into three submissions is one wait; an upload then waits for nothing. */
static void recording_is_one_wait(int staging)
{
    enn_context *ctx = make_context(staging, 2);
    /* A discrete GPU has no mapped path: every transfer is staged there. */
    int mapped = !staging && ctx->caps.unified_memory;
    if (!staging && !mapped) {
        test_context_finish(ctx);
        cr_skip_test("the device's memory is not host-visible (no mapped transfers)");
    }
    float *x = calloc(N, sizeof *x);
    cr_assert_not_null(x);
    enn_buffer *bx, *by;
    ENN_ASSERT_OK(enn_buffer_create(ctx, N * 4, &bx));
    ENN_ASSERT_OK(enn_buffer_create(ctx, N * 4, &by));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bx, 0, x, N * 4));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, by, 0, x, N * 4));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    const enn_pipeline *p = test_axpby_pipeline(ctx);

    uint64_t w0 = ctx->host_waits;
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (int i = 0; i < 5; i++) ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_INOUT(by), N, 1.0f, 1.0f));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    cr_assert_eq(enn_recorder_get_stats(rec).submits, 3, "5 dispatches at 2 per submit");
    cr_assert_eq(ctx->host_waits - w0, 1, "one wait for the whole recording, not one per submission");

    /* Nothing pending: a mapped upload does not block; a staged one waits for its copy. */
    w0 = ctx->host_waits;
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bx, 0, x, N * 4));
    cr_assert_eq(ctx->host_waits - w0, staging ? 1 : 0);

    /* Submitted, not waited for: the next upload first waits for it. */
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_INOUT(by), N, 1.0f, 1.0f));
    ENN_ASSERT_OK(enn_recorder_submit(rec));
    w0 = ctx->host_waits;
    ENN_ASSERT_OK(enn_buffer_download(ctx, by, 0, x, N * 4));
    cr_assert_eq(ctx->host_waits - w0, staging ? 2 : 1);
    /* The recording is complete now: waiting on it again blocks nowhere. */
    w0 = ctx->host_waits;
    ENN_ASSERT_OK(enn_recorder_wait(rec));
    cr_assert_eq(ctx->host_waits - w0, 0);

    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, by);
    free(x);
    test_context_finish(ctx);
}

Test(host_waits, recording_and_mapped_transfers) { recording_is_one_wait(0); }
Test(host_waits, recording_and_staged_transfers) { recording_is_one_wait(1); }

Test(host_waits, peak_reset)
{
    enn_context *ctx = test_context();
    enn_buffer *big, *small;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 1 << 20, &small));
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4 << 20, &big));
    enn_buffer_destroy(ctx, big);
    enn_memory_stats st;
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_assert_geq(st.peak_used_bytes, st.used_bytes + (4 << 20), "the peak includes the freed buffer");
    enn_memory_reset_peak(ctx);
    ENN_ASSERT_OK(enn_memory_get_stats(ctx, &st));
    cr_assert_eq(st.peak_used_bytes, st.used_bytes, "a reset peak is what is in use");
    enn_buffer_destroy(ctx, small);
    test_context_finish(ctx);
}
