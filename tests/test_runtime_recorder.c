/* The recorder: long chains of dependent dispatches give the exact answer, also when
 * split into many submissions, and barriers are placed exactly where buffer accesses
 * conflict (read after write, write after read, overlapping sub-ranges) and nowhere
 * else. Every case runs with push descriptors and with the descriptor-pool path
 * (ENN_DISABLE_PUSH_DESCRIPTORS=1), under synchronization validation, so a barrier that
 * is missing is reported by the layer even though lavapipe runs dispatches in order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "runtime_helpers.h"

#define N 4096 /* floats per operand: 64 workgroups of 64 */

/* `path` of the cases below: bit 0 the descriptor-pool path (else push descriptors),
 * STAGING uploads and downloads through the staging path. */
#define STAGING 2

static enn_context *make_context(int path, uint32_t cap)
{
    int pool_path = path & 1;
    test_sync_validation();
    if (pool_path) test_setenv("ENN_DISABLE_PUSH_DESCRIPTORS", "1");
    if (path & STAGING) test_setenv("ENN_FORCE_STAGING", "1");
    enn_context_options opt = {.max_dispatches_per_submit = cap};
    enn_context *ctx = test_context_with(&opt);
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    if (!pool_path && !caps.push_descriptors) {
        enn_context_destroy(ctx);
        cr_skip_test("%s has no push descriptors", caps.device_name);
    }
    cr_assert_eq(caps.push_descriptors, !pool_path);
    cr_assert_eq(test_axpby_pipeline(ctx)->push_descriptors, !pool_path, "the pipeline took the other path");
    return ctx;
}

static enn_buffer *upload_floats(enn_context *ctx, const float *v, size_t n)
{
    enn_buffer *b;
    ENN_ASSERT_OK(enn_buffer_create(ctx, n * sizeof(float), &b));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, b, 0, v, n * sizeof(float)));
    return b;
}

static void download_floats(enn_context *ctx, const enn_buffer *b, size_t offset_floats, float *v, size_t n)
{
    ENN_ASSERT_OK(enn_buffer_download(ctx, b, offset_floats * sizeof(float), v, n * sizeof(float)));
}

/* Multiples of 1/4 below 2^20: every partial sum of the chain is exact in fp32, so the
 * device must match the double reference exactly. */
static void chain_input(float *x)
{
    for (uint32_t i = 0; i < N; i++) x[i] = (float)(i % 13) * 0.25f;
}

/* y = 0, then `steps` times y += x, in one recording. */
static void chain(int path, uint32_t cap, uint32_t steps)
{
    enn_context *ctx = make_context(path, cap);
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    cr_assert(x && y);
    chain_input(x);
    enn_buffer *bx = upload_floats(ctx, x, N), *by;
    ENN_ASSERT_OK(enn_buffer_create(ctx, N * sizeof(float), &by));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    double t0 = test_seconds();
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_record_fill(rec, by, 0, 0, 0));
    for (uint32_t s = 0; s < steps; s++) ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_INOUT(by), N, 1, 1));
    ENN_ASSERT_OK(enn_recorder_submit(rec));
    double recorded_ms = (test_seconds() - t0) * 1e3;
    ENN_ASSERT_OK(enn_recorder_wait(rec));
    /* The recorder's own clock of the recording lies within the test's around it. */
    double record_ms = enn_recorder_get_stats(rec).record_ms;
    cr_expect(record_ms > 0 && record_ms <= recorded_ms, "record_ms %.3f, the test measured %.3f ms", record_ms,
              recorded_ms);
    download_floats(ctx, by, 0, y, N);
    for (uint32_t i = 0; i < N; i++) {
        double want = 0;
        for (uint32_t s = 0; s < steps; s++) want += (double)x[i];
        cr_assert_eq((double)y[i], want, "y[%u] = %.9g after %u steps, want %.9g", i, y[i], steps, want);
    }
    /* Each command depends on the one before; a submission starts after a full barrier
     * (the one ending the previous submission), so every command but the first of each
     * submission needs one barrier. */
    enn_recorder_stats st = enn_recorder_get_stats(rec);
    uint32_t commands = steps + 1, per = cap ? cap : 256;
    cr_expect_eq(st.dispatches, steps);
    cr_expect_eq(st.transfers, 1);
    cr_expect_eq(st.submits, (commands + per - 1) / per, "%u commands, %u per submission: %u submissions",
                 commands, per, st.submits);
    cr_expect_eq(st.barriers, commands - st.submits, "%u barriers for %u dependent commands in %u submissions",
                 st.barriers, commands, st.submits);
    cr_log_info("%u dispatches: %u submissions, %u barriers", st.dispatches, st.submits, st.barriers);

    /* The recorder is reusable: a second recording (y += x once more) starts fresh. */
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_INOUT(by), N, 1, 1));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    st = enn_recorder_get_stats(rec);
    cr_expect_eq(st.dispatches, 1);
    cr_expect_eq(st.submits, 1);
    cr_expect_eq(st.barriers, 0);
    download_floats(ctx, by, 0, y, N);
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq((double)y[i], (double)x[i] * (steps + 1), "y[%u] after the second recording", i);

    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, by);
    free(x);
    free(y);
    test_context_finish(ctx);
}

#define BOTH_PATHS(name, ...)                                         \
    Test(runtime_recorder, name##_push) { name(0, __VA_ARGS__); }     \
    Test(runtime_recorder, name##_pool) { name(1, __VA_ARGS__); }

static void chain_1000(int path, uint32_t cap) { chain(path, cap, 1000); }
BOTH_PATHS(chain_1000, 0)
static void chain_1000_cap7(int path, uint32_t cap) { chain(path, cap, 1000); }
BOTH_PATHS(chain_1000_cap7, 7)

/* Eight dispatches read x and write eight different buffers: no barrier at all; then one
 * that reads y1 (written above) needs one. */
static void independent(int path, int unused)
{
    enn_context *ctx = make_context(path, 0);
    float x[N], y[N];
    chain_input(x);
    enn_buffer *bx = upload_floats(ctx, x, N), *bys[8], *bz;
    for (int k = 0; k < 8; k++) ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof x, &bys[k]));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof x, &bz));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (int k = 0; k < 8; k++) ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_OUT(bys[k]), N, (float)(k + 1), 0));
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 0, "independent dispatches got barriers");
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bys[0]), ENN_OUT(bz), N, 2, 0));
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 1, "read after write got no barrier");
    ENN_ASSERT_OK(enn_recorder_run(rec));
    for (int k = 0; k < 8; k++) {
        download_floats(ctx, bys[k], 0, y, N);
        for (int i = 0; i < N; i++) cr_assert_eq(y[i], x[i] * (k + 1), "y%d[%d]", k, i);
    }
    download_floats(ctx, bz, 0, y, N);
    for (int i = 0; i < N; i++) cr_assert_eq(y[i], x[i] * 2, "z[%d]", i);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, bx);
    for (int k = 0; k < 8; k++) enn_buffer_destroy(ctx, bys[k]);
    enn_buffer_destroy(ctx, bz);
    test_context_finish(ctx);
}
BOTH_PATHS(independent, 0)

/* y = x reads x; then x = x + z writes x: a write after read, which needs a barrier so
 * the first dispatch sees the old x. */
static void write_after_read(int path, int unused)
{
    enn_context *ctx = make_context(path, 0);
    float x[N], z[N], y[N];
    chain_input(x);
    for (int i = 0; i < N; i++) z[i] = (float)(i % 7) + 100.0f;
    enn_buffer *bx = upload_floats(ctx, x, N), *bz = upload_floats(ctx, z, N), *by;
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &by));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_OUT(by), N, 1, 0));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bz), ENN_INOUT(bx), N, 1, 1));
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 1, "write after read: %u barriers",
                 enn_recorder_get_stats(rec).barriers);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    download_floats(ctx, by, 0, y, N);
    for (int i = 0; i < N; i++) cr_assert_eq(y[i], x[i], "y[%d] saw the new x", i);
    download_floats(ctx, bx, 0, y, N);
    for (int i = 0; i < N; i++) cr_assert_eq(y[i], x[i] + z[i], "x[%d]", i);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, bz);
    enn_buffer_destroy(ctx, by);
    test_context_finish(ctx);
}
BOTH_PATHS(write_after_read, 0)
/* The same with uploads and downloads as copies on the queue: the dependencies between
 * transfer submissions and recordings are checked by synchronization validation too. */
Test(runtime_recorder, write_after_read_staging) { write_after_read(STAGING, 0); }
Test(runtime_recorder, chain_1000_cap7_staging) { chain(STAGING | 1, 7, 1000); }

/* One buffer holding four N-float slots. Writes to three disjoint slots (two of them
 * adjacent: ranges are half-open) need no barrier; a read-write of a range straddling
 * slots 0 and 1 needs one; then reading slot 3, written before that barrier, into the
 * untouched slot 2 needs none. */
static void sub_ranges(int path, int unused)
{
    enn_context *ctx = make_context(path, 0);
    const VkDeviceSize slot = N * sizeof(float); /* 16 KiB: a multiple of any binding alignment */
    float x[N], out[4 * N];
    chain_input(x);
    enn_buffer *bx = upload_floats(ctx, x, N), *big;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4 * slot, &big));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    enn_binding s0 = {big, 0, slot, ENN_ACCESS_WRITE}, s1 = {big, slot, slot, ENN_ACCESS_WRITE};
    enn_binding s3 = {big, 3 * slot, slot, ENN_ACCESS_WRITE};
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), s0, N, 1, 0));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), s1, N, 2, 0));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), s3, N, 4, 0));
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 0, "disjoint sub-ranges of one buffer got a barrier");
    /* Straddles slots 0 and 1: overlaps both writes. */
    enn_binding mid = {big, slot / 2, slot, ENN_ACCESS_READ_WRITE};
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), mid, N, 8, 1));
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 1, "overlapping sub-ranges got no barrier");
    /* Slot 3 was written before the barrier, slot 2 never: no new barrier. */
    enn_binding r3 = {big, 3 * slot, slot, ENN_ACCESS_READ}, s2 = {big, 2 * slot, slot, ENN_ACCESS_WRITE};
    ENN_ASSERT_OK(test_record_axpby(rec, p, r3, s2, N, 1, 0));
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 1, "a read of data behind a barrier got another one");
    ENN_ASSERT_OK(enn_recorder_run(rec));
    download_floats(ctx, big, 0, out, 4 * N);
    for (int i = 0; i < 4 * N; i++) {
        int s = i / N, j = i % N;
        double want = s == 0 ? x[j] : s == 1 ? 2.0 * x[j] : s == 2 ? 4.0 * x[j] : 4.0 * x[j];
        /* mid covers floats [N/2, 3N/2): 8 x[k] + old, k = i - N/2 */
        if (i >= N / 2 && i < 3 * N / 2) want = 8.0 * x[i - N / 2] + want;
        cr_assert_eq((double)out[i], want, "float %d (slot %d) = %g, want %g", i, s, out[i], want);
    }
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, big);
    test_context_finish(ctx);
}
BOTH_PATHS(sub_ranges, 0)

/* Fills and copies take part in the same tracking: fill y, copy y to z, read z. */
static void transfers(int path, int unused)
{
    enn_context *ctx = make_context(path, 0);
    float y[N];
    enn_buffer *by, *bz, *bw;
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &by));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &bz));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &bw));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    const float three = 3.0f;
    uint32_t bits;
    memcpy(&bits, &three, 4);
    ENN_ASSERT_OK(enn_record_fill(rec, by, 0, 0, bits));
    ENN_ASSERT_OK(enn_record_copy(rec, by, 0, bz, 0, sizeof y));
    ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bz), ENN_OUT(bw), N, 5, 0));
    enn_recorder_stats st = enn_recorder_get_stats(rec);
    cr_expect_eq(st.barriers, 2);
    cr_expect_eq(st.transfers, 2);
    cr_expect_eq(st.dispatches, 1);
    ENN_ASSERT_OK(enn_recorder_run(rec));
    download_floats(ctx, bw, 0, y, N);
    for (int i = 0; i < N; i++) cr_assert_eq(y[i], 15.0f, "w[%d] = %g", i, y[i]);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, by);
    enn_buffer_destroy(ctx, bz);
    enn_buffer_destroy(ctx, bw);
    test_context_finish(ctx);
}
BOTH_PATHS(transfers, 0)

/* Two recorders on one context: the second reads what the first wrote, submitted but
 * not waited for, and an upload in between overwrites part of the input. The end-of-
 * submission barrier and the transfers' waits must order all three (synchronization
 * validation checks the device side, the values the rest). */
static void two_recorders(int path, int unused)
{
    enn_context *ctx = make_context(path, 0);
    float x[N], y[N];
    chain_input(x);
    enn_buffer *bx = upload_floats(ctx, x, N), *by, *bz;
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &by));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &bz));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *a, *b;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &a));
    ENN_ASSERT_OK(enn_recorder_create(ctx, &b));
    ENN_ASSERT_OK(enn_recorder_begin(a));
    ENN_ASSERT_OK(test_record_axpby(a, p, ENN_IN(bx), ENN_OUT(by), N, 2, 0)); /* y = 2x */
    ENN_ASSERT_OK(enn_recorder_submit(a));
    const float head[4] = {1000, 1001, 1002, 1003};
    ENN_ASSERT_OK(enn_buffer_upload(ctx, by, 0, head, sizeof head)); /* after a's write */
    ENN_ASSERT_OK(enn_recorder_begin(b));
    ENN_ASSERT_OK(test_record_axpby(b, p, ENN_IN(by), ENN_OUT(bz), N, 3, 0)); /* z = 3y */
    ENN_ASSERT_OK(enn_recorder_run(b));
    ENN_ASSERT_OK(enn_recorder_wait(a));
    download_floats(ctx, bz, 0, y, N);
    for (int i = 0; i < N; i++) {
        float want = 3.0f * (i < 4 ? head[i] : 2.0f * x[i]);
        cr_assert_eq(y[i], want, "z[%d] = %g, want %g", i, y[i], want);
    }
    enn_recorder_destroy(a);
    enn_recorder_destroy(b);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, by);
    enn_buffer_destroy(ctx, bz);
    test_context_finish(ctx);
}
BOTH_PATHS(two_recorders, 0)
Test(runtime_recorder, two_recorders_staging) { two_recorders(STAGING, 0); }
