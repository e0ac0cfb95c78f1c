/* libenn's own host allocations (malloc, calloc, realloc in runtime/) failing: the suite
 * links with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free
 * (tests/CMakeLists.txt), so libenn's calls (linked in statically) come here; the Vulkan
 * loader, the driver, the validation layer and libc's own callers (strdup) are shared
 * libraries and are left alone. While armed, call number n returns NULL. For every n of a
 * context creation, and of a model creation, a training step, a checkpoint save and a
 * stream step, the call that meets the failure must return an error with a message;
 * once what was made is destroyed, no block allocated while armed is still live, and
 * the validation layer (on, as everywhere) has reported nothing, not even an object left
 * on the device. */
#include <execinfo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "harness.h"
#include "small_config.h"

/* ------------------------------------------------------------ the wrappers */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void __wrap_free(void *p);

/* Blocks handed out while armed, in an open-addressed set (tombstones on removal), so
 * that a block freed by libc's own callers or allocated before arming is told apart. */
#define LIVE_SLOTS (1u << 16)
#define TOMBSTONE ((void *)1)
static void *live[LIVE_SLOTS];
static uint32_t live_count;

static int armed;
static uint64_t calls, fail_at;
static int failed;

static uint32_t slot_of(void *p) { return (uint32_t)(((uintptr_t)p >> 4) * 2654435761u) & (LIVE_SLOTS - 1); }

static void live_add(void *p)
{
    for (uint32_t i = slot_of(p);; i = (i + 1) & (LIVE_SLOTS - 1))
        if (!live[i] || live[i] == TOMBSTONE) {
            live[i] = p;
            live_count++;
            return;
        }
}

static void live_remove(void *p)
{
    for (uint32_t i = slot_of(p); live[i]; i = (i + 1) & (LIVE_SLOTS - 1))
        if (live[i] == p) {
            live[i] = TOMBSTONE;
            live_count--;
            return;
        }
}

/* Whether this call is the one to fail; counts it. */
static int fail_now(void)
{
    if (!armed) return 0;
    if (++calls != fail_at) return 0;
    failed = 1;
    const char *trace = getenv("ENN_TEST_ALLOCATION_TRACE");
    if (trace && trace[0] == '2') {
        void *frames[16];
        fprintf(stderr, "host allocation %llu fails here:\n", (unsigned long long)calls);
        backtrace_symbols_fd(frames, backtrace(frames, 16), 2);
    }
    return 1;
}

void *__wrap_malloc(size_t size)
{
    if (fail_now()) return NULL;
    void *p = __real_malloc(size);
    if (p && armed) live_add(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_now()) return NULL;
    void *p = __real_calloc(n, size);
    if (p && armed) live_add(p);
    return p;
}

void *__wrap_realloc(void *old, size_t size)
{
    if (fail_now()) return NULL;   /* old stays as it was */
    void *p = __real_realloc(old, size);
    if (p || !size) {
        if (old && armed) live_remove(old);
        if (p && armed) live_add(p);
    }
    return p;
}

void __wrap_free(void *p)
{
    if (p && armed) live_remove(p);
    __real_free(p);
}

/* live_count and the set are only kept while armed: blocks made before are not in it. */
static void arm(uint64_t n)
{
    memset(live, 0, sizeof live);
    live_count = 0;
    calls = 0;
    failed = 0;
    fail_at = n;
    armed = 1;
}

static void disarm(void) { armed = 0; }

/* ------------------------------------------------------------ the workload */

enum { B = 2, T = 3, D = 3, H = 8, N = 4, C = 3 };

static unsigned messages;
static void on_message(void *user, const char *message)
{
    (void)user;
    messages++;
    fprintf(stderr, "[validation] %s\n", message);
}

/* Checks what `call` (which began at host allocation `before`) did with allocation n
 * failing, or, when none failed, that it succeeded. */
static unsigned failures_made;   /* attempts in which an allocation did fail */

static void check_outcome(uint64_t n, const char *call, enn_status s, uint64_t before)
{
    failures_made += failed;
    if (getenv("ENN_TEST_ALLOCATION_TRACE"))
        fprintf(stderr, "table %llu %s %s %s\n", (unsigned long long)n, failed ? "failed" : "-", call,
                enn_status_name(s));
    if (!failed) {
        cr_expect_eq(s, ENN_OK, "no host allocation failed (fail at %llu), yet %s returned %s: %s",
                     (unsigned long long)n, call, enn_status_name(s), enn_last_error());
        return;
    }
    cr_expect_neq(s, ENN_OK, "host allocation %llu failed, yet %s returned ENN_OK", (unsigned long long)n, call);
    if (s == ENN_OK) return;
    cr_expect_gt(n, before, "host allocation %llu failed, but %s (which began at call %llu) reported it",
                 (unsigned long long)n, call, (unsigned long long)before);
    cr_expect(enn_last_error()[0], "host allocation %llu failed: %s returned %s with an empty enn_last_error()",
              (unsigned long long)n, call, enn_status_name(s));
}

static enn_status train_one_step(enn_model *m)
{
    float x[B * T * D];
    uint32_t labels[B];
    test_random_batch(5, x, B * T * D, 1, labels, B, C);
    enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
    return enn_model_train_step(m, &batch, NULL);
}

/* A validated context on the test device, disk cache off (every run makes the same
 * calls). */
static enn_context_options options(void)
{
    return (enn_context_options){.device = test_device(), .validation = 1, .cache_dir = "",
                                 .validation_callback = on_message};
}

/* ENN_TEST_ALLOCATION_FAIL_AT=n or =first-last: only those (ENN_TEST_ALLOCATION_TRACE=1
 * prints each outcome, =2 also where each failure happens). */
static void range(uint64_t *first, uint64_t *last)
{
    const char *only = getenv("ENN_TEST_ALLOCATION_FAIL_AT");
    if (!only || !only[0]) return;
    char *end;
    *first = *last = strtoull(only, &end, 10);
    if (*end == '-') *last = strtoull(end + 1, NULL, 10);
}

/* Creating a context, a fresh one each time. */
Test(runtime_host_allocation, failures_in_context_creation)
{
    enn_context_options opt = options();
    enn_context *ctx = NULL;
    arm(0);
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    uint64_t total = calls;
    enn_context_destroy(ctx);
    disarm();
    cr_expect_eq(live_count, 0, "a context created and destroyed left %u block(s) live", live_count);
    uint64_t first = 1, last = total + 1;   /* the last one: past the end, nothing fails */
    range(&first, &last);
    for (uint64_t n = first; n <= last; n++) {
        messages = 0;
        arm(n);
        ctx = NULL;
        check_outcome(n, "enn_context_create", enn_context_create(&opt, &ctx), 0);
        enn_context_destroy(ctx);
        disarm();
        cr_expect_eq(live_count, 0, "host allocation %llu failed in context creation: %u block(s) are still live",
                     (unsigned long long)n, live_count);
        cr_expect_eq(messages, 0, "host allocation %llu failed in context creation: %u validation message(s)",
                     (unsigned long long)n, messages);
    }
    cr_log_info("context creation: %llu host allocations, each failed in turn", (unsigned long long)total);
    cr_expect_gt(failures_made, 0, "no allocation was ever failed: the harness does nothing");
}

/* A model, a training step, a checkpoint and a stream step on one context, every
 * allocation in turn; a first run has built the pipelines (the last test builds them
 * each time, on fresh contexts). After each failure the model is destroyed and nothing
 * it allocated is left, and the same context serves the next attempt. */
static enn_status model_stage(uint64_t n, enn_context *ctx, const char *checkpoint)
{
    enn_model_config c = test_small_classifier(D, T, B, C, H, N);
    c.seed = 11;
    enn_model *m = NULL;
    uint64_t before = calls;
    enn_status s = enn_model_create(ctx, &c, &m);
    const char *call = "enn_model_create";
    if (s == ENN_OK) {
        before = calls;
        s = train_one_step(m);
        call = "enn_model_train_step";
    }
    if (s == ENN_OK) {
        before = calls;
        s = enn_model_save(m, checkpoint);
        call = "enn_model_save";
    }
    enn_stream *st = NULL;
    if (s == ENN_OK) {
        before = calls;
        s = enn_stream_create(m, 1, &st);
        call = "enn_stream_create";
    }
    if (s == ENN_OK) {
        const float x[D] = {0.5f, -0.25f, 1.0f};
        float out[C];
        before = calls;
        s = enn_stream_step(st, x, out);
        call = "enn_stream_step";
    }
    enn_stream_destroy(st);
    if (n) check_outcome(n, call, s, before);
    enn_model_destroy(m);
    return s;
}

/* warm: one context for all attempts, checked once each model is destroyed; else a
 * fresh context each time, checked once it is destroyed too (it keeps the pipelines it
 * built). */
static void failures_in_models(int warm)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(path, dir, "model.safetensors");
    enn_context_options opt = options();
    enn_context *ctx = NULL;
    messages = 0;
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    if (warm) ENN_ASSERT_OK(model_stage(0, ctx, path));
    arm(0);
    ENN_ASSERT_OK(model_stage(0, ctx, path));
    uint64_t total = calls;
    if (!warm) enn_context_destroy(ctx);
    disarm();
    cr_expect_eq(live_count, 0, "a run without failures left %u block(s) live", live_count);
    uint64_t first = 1, last = total + 1;
    range(&first, &last);
    for (uint64_t n = first; n <= last; n++) {
        if (!warm) ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
        arm(n);
        model_stage(n, ctx, path);
        fail_at = 0;   /* what follows is counted, and not failed */
        if (!warm) enn_context_destroy(ctx);
        disarm();
        cr_expect_eq(live_count, 0, "host allocation %llu failed: %u block(s) allocated since are still live once "
                     "the model%s is destroyed", (unsigned long long)n, live_count, warm ? "" : " and its context");
    }
    cr_log_info("a model, a training step, a checkpoint and a stream step%s: %llu host allocations, each failed "
                "in turn", warm ? " on a warm context" : "", (unsigned long long)total);
    if (warm) enn_context_destroy(ctx);
    test_tmpdir_remove(dir);
    cr_expect_gt(failures_made, 0, "no allocation was ever failed: the harness does nothing");
    cr_expect_eq(messages, 0, "%u validation message(s)", messages);
}

Test(runtime_host_allocation, failures_in_models) { failures_in_models(1); }

/* The same with nothing built yet: a fresh context each time (which also builds every
 * pipeline), every allocation in turn; about a second each on lavapipe, so only with
 * ENN_TEST_EVERY_ALLOCATION=1. */
Test(runtime_host_allocation, failures_in_models_on_fresh_contexts, .timeout = 900)
{
    const char *every = getenv("ENN_TEST_EVERY_ALLOCATION");
    if (!every || every[0] != '1') cr_skip_test("set ENN_TEST_EVERY_ALLOCATION=1 to run it");
    failures_in_models(0);
}
