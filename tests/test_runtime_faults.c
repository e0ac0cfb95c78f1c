/* Device failures on cue (tests/fault_layer, under the validation layer): device memory
 * that runs out at each vkAllocateMemory of a run in turn, and a device lost (or hung) at
 * submissions of each part of a run, and under `enn train` (one process, and process 1 of
 * two under mpirun). The design's rule: a lost
 * device or an out-of-memory is an error the caller can handle, not a crash; nothing
 * already saved is lost.
 *
 * The library's cases run twice, with device memory mapped (lavapipe's unified memory:
 * copies are memcpy) and with ENN_FORCE_STAGING (copies are submissions, as on a discrete
 * GPU). */
#include <ctype.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_files.h"
#include "enn_data.h"
#include "harness.h"
#include "runtime_helpers.h"
#include "small_config.h"
#include "tool_run.h"
#include "io/safetensors.h"

enum { B = 4, T = 5, D = 3, H = 8, N = 5, C = 3 };
/* Small segments: a training step is several submissions, so the device can be lost in
 * the middle of one. */
#define DISPATCHES_PER_SUBMIT 16

static void *fault_layer;

/* The fault layer below the validation layer: the application's calls are validated,
 * and what the layer injects comes up through it. The loader (1.3.239) stacks layers
 * enabled by VK_INSTANCE_LAYERS in the order it finds their manifests, so the search path
 * names the validation layer's directory first. */
static void use_fault_layer(int staging)
{
    test_setenv("VK_LAYER_PATH", ENN_VALIDATION_LAYER_DIR ":" ENN_FAULT_LAYER_DIR);
    test_setenv("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation:VK_LAYER_ENN_fault_injection");
    test_setenv("ENN_FORCE_STAGING", staging ? "1" : "0");
    /* Held open here, the library (and what it counted) outlives each instance. */
    fault_layer = dlopen(ENN_FAULT_LAYER_LIBRARY, RTLD_NOW);
    cr_assert(fault_layer, "%s: %s", ENN_FAULT_LAYER_LIBRARY, dlerror());
}

/* What the fault layer counted on the newest device: allocations, submissions, and
 * fences destroyed while pending (any may be NULL). */
static void fault_counts(uint64_t *allocations, uint64_t *submissions, uint64_t *early_destroys)
{
    cr_assert(fault_layer, "use_fault_layer first");
    typedef void counts_fn(uint64_t *, uint64_t *, uint64_t *);
    counts_fn *counts = (counts_fn *)dlsym(fault_layer, "enn_fault_layer_counts");
    cr_assert(counts, "enn_fault_layer_counts: %s", dlerror());
    counts(allocations, submissions, early_destroys);
}

/* Validation messages of this test process (libenn does not pass on the loader's notice
 * that VK_INSTANCE_LAYERS, set above, adds layers). */
static atomic_uint messages;
static char first_message[2048];

/* After a device loss the validation layer (1.3.239) takes every submission for still
 * running, since none of the waits that end them returned VK_SUCCESS, and reports each
 * fence, command pool and buffer view of that work destroyed as in use. The spec counts a
 * wait that returned VK_ERROR_DEVICE_LOST as ended; the fault layer checks that rule
 * instead (early_destroys), and these three reports are let through once the fault layer
 * has lost the device. */
static const char *const in_use_after_loss[] = {"VUID-vkDestroyFence-fence-01120",
                                                "VUID-vkDestroyCommandPool-commandPool-00041",
                                                "VUID-vkDestroyBufferView-bufferView-00936"};

static int expected_after_loss(const char *message)
{
    int (*lost)(void) = fault_layer ? (int (*)(void))dlsym(fault_layer, "enn_fault_layer_lost") : NULL;
    if (!lost || !lost()) return 0;
    for (size_t i = 0; i < sizeof in_use_after_loss / sizeof *in_use_after_loss; i++)
        if (strstr(message, in_use_after_loss[i])) return 1;
    return 0;
}

static void on_message(void *user, const char *message)
{
    (void)user;
    if (expected_after_loss(message)) return;
    fprintf(stderr, "[validation] %s\n", message);
    if (atomic_fetch_add(&messages, 1) == 0) snprintf(first_message, sizeof first_message, "%s", message);
}

static enn_context *faulty_context(void)
{
    enn_context_options opt = {.max_dispatches_per_submit = DISPATCHES_PER_SUBMIT, .validation_callback = on_message};
    return test_context_with(&opt);
}

/* Destroys the context (NULL: none) and fails the test on any validation message seen,
 * or any fence destroyed while its submission was pending. */
static void finish(enn_context *ctx)
{
    enn_context_destroy(ctx);
    unsigned n = atomic_load(&messages);
    cr_assert_eq(n, 0, "%u validation message(s); first: %s", n, first_message);
    uint64_t early;
    fault_counts(NULL, NULL, &early);
    cr_assert_eq(early, 0, "%llu fence(s) destroyed while their submissions were pending", (unsigned long long)early);
}

/* The fault layer was the lowest layer of the last instance: the validation layer, on in
 * every test, is above it. */
static void expect_under_validation(void)
{
    int (*lowest)(void) = (int (*)(void))dlsym(fault_layer, "enn_fault_layer_lowest");
    cr_assert(lowest, "enn_fault_layer_lowest: %s", dlerror());
    cr_assert_eq(lowest(), 1, "the fault layer is not the lowest layer: the validation layer is under it "
                 "(VK_LAYER_PATH, VK_INSTANCE_LAYERS)");
}

static enn_model_config small_config(void)
{
    enn_model_config c = test_small_classifier(D, T, B, C, H, N);
    c.seed = 7;
    return c;
}

typedef struct batch_data {
    float x[B * T * D];
    uint32_t labels[B];
    enn_batch batch;
} batch_data;

static void make_batch(uint32_t i, batch_data *b)
{
    test_random_batch(1000 + i, b->x, B * T * D, 1, b->labels, B, C);
    b->batch = (enn_batch){.size = B, .seq_len = T, .x = b->x, .labels = b->labels};
}

static enn_status train_step(enn_model *m, uint32_t i)
{
    batch_data b;
    make_batch(i, &b);
    enn_step_result r;
    return enn_model_train_step(m, &b.batch, &r);
}

static void expect_same_file(const char *path, const unsigned char *bytes, size_t size, const char *when)
{
    unsigned char *now;
    size_t n = test_read_file(path, &now);
    cr_assert(n == size && !memcmp(now, bytes, size), "%s: %s changed (%zu bytes, were %zu)", when, path, n, size);
    free(now);
}

/* The checkpoint loads in a context without faults; one of this suite's models (`ours`)
 * also trains on. */
static void expect_loadable(const char *path, int ours)
{
    unsetenv("ENN_FAULT_ALLOCATE_MEMORY");
    unsetenv("ENN_FAULT_ALLOCATE_MEMORY_LAST");
    unsetenv("ENN_FAULT_DEVICE_LOST");
    unsetenv("ENN_FAULT_DEVICE_HANG");
    enn_context *ctx = faulty_context();
    enn_model *m = NULL;
    ENN_ASSERT_OK(enn_model_load(ctx, path, &m));
    if (ours) ENN_ASSERT_OK(train_step(m, 9));
    enn_model_destroy(m);
    finish(ctx);
}

/* What a run does, stage by stage, until the first failure. */
typedef enum stage {
    STAGE_CONTEXT,
    STAGE_MODEL,
    STAGE_STEP1,
    STAGE_SAVE1,
    STAGE_LOAD,
    STAGE_STEP2,
    STAGE_SAVE2,
    STAGE_STEP3,
    STAGE_DONE,
} stage;
static const char *const stage_names[] = {"context creation", "model creation", "training step 1", "save 1",
                                          "load",             "training step 2", "save 2",           "training step 3",
                                          "nothing"};

typedef struct run {
    enn_context *ctx;
    enn_model *model;
    stage failed;            /* STAGE_DONE when every stage succeeded */
    enn_status status;
    char message[1024];
    uint64_t allocations[STAGE_DONE], submissions[STAGE_DONE]; /* counted after each stage */
    unsigned char *file;     /* the checkpoint file as it was before the run, or as the */
    size_t file_size;        /* run's last successful save left it */
} run;

static enn_status run_stage(run *r, stage st, const char *checkpoint)
{
    enn_model_config c = small_config();
    enn_context_options opt = {.device = test_device(), .validation = 1,
                               .max_dispatches_per_submit = DISPATCHES_PER_SUBMIT, .validation_callback = on_message};
    switch (st) {
    case STAGE_CONTEXT: return enn_context_create(&opt, &r->ctx);
    case STAGE_MODEL: return enn_model_create(r->ctx, &c, &r->model);
    case STAGE_STEP1: return train_step(r->model, 1);
    case STAGE_STEP2: return train_step(r->model, 2);
    case STAGE_STEP3: return train_step(r->model, 3);
    case STAGE_SAVE1: return enn_model_save(r->model, checkpoint);
    case STAGE_LOAD: {
        /* A second model from the checkpoint, as a program that evaluates beside training. */
        enn_model *loaded = NULL;
        enn_status s = enn_model_load(r->ctx, checkpoint, &loaded);
        enn_model_destroy(loaded);
        return s;
    }
    case STAGE_SAVE2: {
        enn_metadata note = {"note", "second save"};
        return enn_model_save_with_metadata(r->model, checkpoint, &note, 1);
    }
    case STAGE_DONE: break;
    }
    return ENN_OK;
}

/* Runs the stages; stops at the first failure, which it records. */
static void run_stages(run *r, const char *checkpoint)
{
    memset(r, 0, sizeof *r);
    r->failed = STAGE_DONE;
    if (access(checkpoint, F_OK) == 0) r->file_size = test_read_file(checkpoint, &r->file);
    for (stage st = STAGE_CONTEXT; st < STAGE_DONE; st++) {
        enn_status s = run_stage(r, st, checkpoint);
        if (s != ENN_OK) {
            r->failed = st;
            r->status = s;
            snprintf(r->message, sizeof r->message, "%s", enn_last_error());
            return;
        }
        fault_counts(&r->allocations[st], &r->submissions[st], NULL);
        if (st == STAGE_SAVE1 || st == STAGE_SAVE2) {
            free(r->file);
            r->file_size = test_read_file(checkpoint, &r->file);
        }
    }
}

static void run_destroy(run *r)
{
    enn_model_destroy(r->model);
    finish(r->ctx);
    free(r->file);
}

/* Whether `text` holds `word` (lower case), in any case. */
static int contains_nocase(const char *text, const char *word)
{
    for (; *text; text++) {
        size_t i = 0;
        while (word[i] && tolower((unsigned char)text[i]) == word[i]) i++;
        if (!word[i]) return 1;
    }
    return 0;
}

/* The stages once with no fault cued (staged or mapped): the counts a faulty run is cued
 * by, and the checkpoint at `path` (in a new temporary `dir`) that it must leave intact. */
static void run_without_faults(int staging, char *dir, char *path, run *clean)
{
    use_fault_layer(staging);
    test_tmpdir(dir);
    test_path(path, dir, "model.safetensors");
    run_stages(clean, path);
    cr_assert_eq(clean->failed, STAGE_DONE, "without faults, %s failed: %s", stage_names[clean->failed],
                 clean->message);
    run_destroy(clean);
    expect_under_validation();
}

/* Device memory runs out at each vkAllocateMemory of a run in turn (and stays out): the
 * call that meets it says so and how much it wanted; the rest is destroyed cleanly; the
 * checkpoint already on disk is untouched and loads. With `once`, only that allocation
 * fails, and the stage that met it then succeeds when tried again on the same context:
 * the failure left nothing half made. */
static void out_of_device_memory(int staging, int once)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    run clean;
    run_without_faults(staging, dir, path, &clean);
    uint64_t total = clean.allocations[STAGE_STEP3];
    cr_assert(total >= 2, "the run made %llu device allocations", (unsigned long long)total);
    unsigned char *saved;
    size_t saved_size = test_read_file(path, &saved);

    for (uint64_t n = 1; n <= total + 1; n++) {
        char value[24];
        snprintf(value, sizeof value, "%llu", (unsigned long long)n);
        test_setenv("ENN_FAULT_ALLOCATE_MEMORY", value);
        test_setenv("ENN_FAULT_ALLOCATE_MEMORY_LAST", once ? value : "0");
        run r;
        run_stages(&r, path);
        /* Where the clean run had made its n-th allocation. */
        stage want = STAGE_CONTEXT;
        while (want < STAGE_DONE && clean.allocations[want] < n) want++;
        cr_assert_eq(r.failed, want, "allocation %llu: %s failed (%s), expected %s to", (unsigned long long)n,
                     stage_names[r.failed], r.message, stage_names[want]);
        if (want == STAGE_DONE) {
            run_destroy(&r);
            continue;
        }
        cr_assert_eq(r.status, ENN_ERROR_OUT_OF_DEVICE_MEMORY, "allocation %llu, %s: %s: %s", (unsigned long long)n,
                     stage_names[want], enn_status_name(r.status), r.message);
        cr_assert(contains_nocase(r.message, "out of device memory") && strstr(r.message, " bytes"),
                  "allocation %llu, %s: the message should say that device memory ran out and how much was asked "
                  "for: %s", (unsigned long long)n, stage_names[want], r.message);
        if (once && want != STAGE_CONTEXT) {
            ENN_ASSERT_OK(run_stage(&r, want, path));
            for (stage st = want + 1; st < STAGE_DONE; st++) ENN_ASSERT_OK(run_stage(&r, st, path));
            run_destroy(&r);
            /* The run finished: the file is its own now. */
            free(saved);
            saved_size = test_read_file(path, &saved);
            continue;
        }
        run_destroy(&r);
        expect_same_file(path, saved, saved_size, "after running out of device memory");
    }
    expect_loadable(path, 1);
    free(saved);
    test_tmpdir_remove(dir);
}

Test(runtime_faults, out_of_device_memory_mapped, .timeout = 120) { out_of_device_memory(0, 0); }
Test(runtime_faults, out_of_device_memory_staged, .timeout = 120) { out_of_device_memory(1, 0); }
Test(runtime_faults, out_of_device_memory_once_mapped, .timeout = 120) { out_of_device_memory(0, 1); }
Test(runtime_faults, out_of_device_memory_once_staged, .timeout = 120) { out_of_device_memory(1, 1); }

/* A model whose buffers take several memory blocks (a buffer over half a block, 32 MiB,
 * gets one of its own: here the trace [T+1, N, h] and the step slabs [T+1, B, h]): device
 * memory runs out at each of its allocations in turn, once each; the failed creation
 * leaves no buffer behind, and the model made again on the same context works. */
Test(runtime_faults, out_of_device_memory_large_model, .timeout = 120)
{
    use_fault_layer(0);
    enn_model_config c = test_small_classifier(D, 512, 64, C, 256, 64);
    c.seed = 7;
    enn_context *ctx = faulty_context();
    uint64_t before, after;
    fault_counts(&before, NULL, NULL);
    enn_model *m = NULL;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    fault_counts(&after, NULL, NULL);
    enn_model_destroy(m);
    finish(ctx);
    cr_assert(after - before >= 3, "the model made %llu allocations", (unsigned long long)(after - before));
    for (uint64_t n = before + 1; n <= after; n++) {
        char value[24];
        snprintf(value, sizeof value, "%llu", (unsigned long long)n);
        test_setenv("ENN_FAULT_ALLOCATE_MEMORY", value);
        test_setenv("ENN_FAULT_ALLOCATE_MEMORY_LAST", value);
        ctx = faulty_context();
        m = NULL;
        enn_status s = enn_model_create(ctx, &c, &m);
        cr_assert_eq(s, ENN_ERROR_OUT_OF_DEVICE_MEMORY, "allocation %llu: %s: %s", (unsigned long long)n,
                     enn_status_name(s), enn_last_error());
        cr_assert_null(m);
        const char *e = enn_last_error();
        cr_assert(contains_nocase(e, "out of device memory") && strstr(e, " bytes"), "allocation %llu: %s",
                  (unsigned long long)n, e);
        cr_assert(strstr(e, "the model's ") || strstr(e, "the ENN cell's ") || strstr(e, "the head's "),
                  "allocation %llu: the message should name the part of the model: %s", (unsigned long long)n, e);
        enn_memory_stats stats;
        ENN_ASSERT_OK(enn_memory_get_stats(ctx, &stats));
        cr_assert_eq(stats.live_buffers, 0, "allocation %llu: the failed model left %u buffers", (unsigned long long)n,
                     stats.live_buffers);
        ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
        enn_model_destroy(m);
        finish(ctx);
    }
}

/* A failed call on a lost device: an error that says the device was lost. */
static void expect_lost(enn_status s, const char *call, uint64_t k)
{
    cr_assert_neq(s, ENN_OK, "submission %llu lost, then %s succeeded", (unsigned long long)k, call);
    cr_assert(contains_nocase(enn_last_error(), "lost"), "submission %llu lost, then %s: %s: %s (no word of the "
              "lost device)", (unsigned long long)k, call, enn_status_name(s), enn_last_error());
}

/* After the loss every call on the context and model fails at once, and nothing is
 * saved over the checkpoint; destroying still works. */
static void use_after_loss(run *r, const char *path, uint64_t k)
{
    enn_model_config c = small_config();
    expect_lost(enn_context_wait_idle(r->ctx), "enn_context_wait_idle", k);
    if (!r->model) {
        enn_model *m = NULL;
        expect_lost(enn_model_create(r->ctx, &c, &m), "enn_model_create", k);
        cr_assert_null(m);
        return;
    }
    expect_lost(train_step(r->model, 4), "enn_model_train_step", k);
    batch_data b;
    make_batch(5, &b);
    enn_step_result res;
    expect_lost(enn_model_evaluate(r->model, &b.batch, &res, NULL), "enn_model_evaluate", k);
    float w[4096];
    enn_tensor_desc d;
    ENN_ASSERT_OK(enn_model_parameter_desc(r->model, 0, &d));
    size_t count = 1;
    for (uint32_t i = 0; i < d.rank; i++) count *= d.shape[i];
    cr_assert(count <= 4096);
    expect_lost(enn_model_read(r->model, d.name, w, count), "enn_model_read", k);
    enn_stream *stream = NULL;
    enn_status made = enn_stream_create(r->model, 1, &stream);
    if (made == ENN_OK) {
        float frame[D], out[C];
        for (int i = 0; i < D; i++) frame[i] = 0.5f;
        expect_lost(enn_stream_step(stream, frame, out), "enn_stream_step", k);
        enn_stream_destroy(stream);
    } else {
        expect_lost(made, "enn_stream_create", k);
    }
    if (r->file) expect_lost(enn_model_load_into(r->model, path), "enn_model_load_into", k);
    expect_lost(enn_model_save(r->model, path), "enn_model_save", k);
    enn_metadata note = {"note", "after the loss"};
    expect_lost(enn_model_save_with_metadata(r->model, path, &note, 1), "enn_model_save_with_metadata", k);
    if (r->file) expect_same_file(path, r->file, r->file_size, "after the device was lost");
    else cr_assert(access(path, F_OK) != 0, "a checkpoint was written after the device was lost");
}

/* Which submissions to lose: the first of each stage, and every one of the second
 * training step (mapped: its segments) or of the second save (staged: its copies). Each
 * case is a new context, whose kernels lavapipe compiles anew: all of them would take
 * minutes. */
static int worth_losing(const run *clean, uint64_t k, int staging, int hang)
{
    stage st = STAGE_CONTEXT;
    while (clean->submissions[st] < k) st++;
    uint64_t first = st == STAGE_CONTEXT ? 1 : clean->submissions[st - 1] + 1;
    return k == first || (!hang && st == (staging ? STAGE_SAVE2 : STAGE_STEP2));
}

/* The device is lost at submissions of a run in turn (worth_losing): the call that meets
 * it says the device was lost; every later call fails promptly (the test's timeout catches
 * a hang); the checkpoint saved before is unchanged and loads; destroying is clean. With
 * `hang` the submission runs and succeeds and the loss shows at the next wait, as when
 * work hangs a GPU: in the same stage, since each stage waits for its work. */
static void device_lost(int staging, int hang)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    run clean;
    run_without_faults(staging, dir, path, &clean);
    uint64_t total = clean.submissions[STAGE_STEP3];
    cr_assert(total >= 3, "the run made %llu submissions", (unsigned long long)total);
    for (uint64_t k = 1; k <= total; k++) {
        if (!worth_losing(&clean, k, staging, hang)) continue;
        char value[24];
        snprintf(value, sizeof value, "%llu", (unsigned long long)k);
        test_setenv(hang ? "ENN_FAULT_DEVICE_HANG" : "ENN_FAULT_DEVICE_LOST", value);
        unlink(path);
        run r;
        run_stages(&r, path);
        stage want = STAGE_CONTEXT;
        while (want < STAGE_DONE && clean.submissions[want] < k) want++;
        cr_assert_eq(r.failed, want, "submission %llu: %s failed (%s), expected %s to", (unsigned long long)k,
                     stage_names[r.failed], r.message, stage_names[want]);
        cr_assert_eq(r.status, ENN_ERROR_DEVICE_LOST, "submission %llu, %s: %s: %s", (unsigned long long)k,
                     stage_names[want], enn_status_name(r.status), r.message);
        cr_assert(contains_nocase(r.message, "lost"), "submission %llu, %s: the message should name the lost device: "
                  "%s", (unsigned long long)k, stage_names[want], r.message);
        use_after_loss(&r, path, k);
        run_destroy(&r);
    }
    /* Each run saves the same bytes at the same stage (one seed), so one load covers them. */
    expect_loadable(path, 1);
    test_tmpdir_remove(dir);
}

Test(runtime_faults, device_lost_mapped, .timeout = 120) { device_lost(0, 0); }
Test(runtime_faults, device_lost_staged, .timeout = 120) { device_lost(1, 0); }
Test(runtime_faults, device_hang_mapped, .timeout = 120) { device_lost(0, 1); }
Test(runtime_faults, device_hang_staged, .timeout = 120) { device_lost(1, 1); }

/* `enn <args>` with the fault layer under the validation layer, both enabled by the
 * environment: the command's own validation switch stays off, so the validation layer
 * prints what it finds into the output, errors and warnings, and the test reads them. The
 * layer's counts go to `log`. Returns the exit status; the caller frees the output. */
static int run_enn(const char *env, const char *log, const char *args, char **output)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "env -u ENN_VALIDATION VK_LAYER_PATH='%s:%s' "
             "VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation:VK_LAYER_ENN_fault_injection "
             "VK_LAYER_REPORT_FLAGS=error,warn,perf ENN_DEVICE='%s' ENN_FAULT_LOG='%s' %s '%s' %s 2>&1",
             ENN_VALIDATION_LAYER_DIR, ENN_FAULT_LAYER_DIR, test_device(), log, env, ENN_TOOL_PATH, args);
    return test_run_shell(cmd, output);
}

/* The validation layer's reports in the output, but for those expected after a loss
 * (`lost`): their count, and the first in *first. */
static unsigned validation_reports(const char *out, int lost, const char **first)
{
    unsigned n = 0;
    *first = "";
    for (const char *p = out; (p = strstr(p, "Validation ")); p++) {
        if (strncmp(p, "Validation Error", 16) && strncmp(p, "Validation Warning", 18) &&
            strncmp(p, "Validation Performance Warning", 30))
            continue;
        const char *eol = strchr(p, '\n');
        size_t line = eol ? (size_t)(eol - p) : strlen(p);
        int expected = 0;
        for (size_t i = 0; lost && i < sizeof in_use_after_loss / sizeof *in_use_after_loss; i++) {
            const char *at = strstr(p, in_use_after_loss[i]);
            expected |= at && at < p + line;
        }
        if (expected) continue;
        if (!n++) *first = p;
    }
    return n;
}

/* The layer's counts for the last device the command destroyed. */
static void read_log(const char *log, uint64_t *submissions, uint64_t *early_destroys)
{
    FILE *f = fopen(log, "r");
    cr_assert(f, "no %s: the fault layer did not run", log);
    char line[256];
    unsigned long long a = 0, s = 0, e = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) found = sscanf(line, "allocations %llu submissions %llu early_destroys %llu", &a, &s, &e) == 3;
    fclose(f);
    cr_assert(found, "%s holds no counts", log);
    *submissions = s;
    *early_destroys = e;
}

/* The tensors and libenn's metadata of two checkpoints are the same (the loop state in
 * them holds times, and the number of epochs asked for). */
static int same_model(const char *path_a, const char *path_b)
{
    enn_safetensors *a, *b;
    ENN_ASSERT_OK(enn_safetensors_read(path_a, &a));
    ENN_ASSERT_OK(enn_safetensors_read(path_b, &b));
    int same = enn_safetensors_count(a) == enn_safetensors_count(b);
    for (uint32_t i = 0; same && i < enn_safetensors_count(a); i++) {
        const enn_st_tensor *ta = enn_safetensors_at(a, i), *tb = enn_safetensors_find(b, ta->name);
        same = tb && ta->dtype == tb->dtype && enn_st_elements(ta) == enn_st_elements(tb) &&
               !memcmp(ta->data, tb->data, enn_st_elements(ta) * enn_st_dtype_size(ta->dtype));
    }
    static const char *const keys[] = {"config", "step", "passes", "data_crc32"};
    for (size_t k = 0; same && k < sizeof keys / sizeof *keys; k++) {
        const char *va = enn_safetensors_meta(a, keys[k]), *vb = enn_safetensors_meta(b, keys[k]);
        same = va && vb && !strcmp(va, vb);
    }
    enn_safetensors_free(a);
    enn_safetensors_free(b);
    return same;
}

/* <dir>/x.npy [n, 4, 3] and <dir>/y.npy [n, 2] of random values from `seed` (a small
 * regression set for `enn train --data npy`), their paths in x and y. */
static void write_regression_data(const char *dir, uint64_t n, uint64_t seed, char *x, char *y)
{
    float *xs = malloc(n * 4 * 3 * sizeof *xs), *ys = malloc(n * 2 * sizeof *ys);
    cr_assert(xs && ys);
    for (size_t i = 0; i < n * 4 * 3; i++) xs[i] = (float)test_rand_uniform(&seed, -1, 1);
    for (size_t i = 0; i < n * 2; i++) ys[i] = (float)test_rand_uniform(&seed, -2, 2);
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(x, dir, "x.npy"), xs, 3, (uint64_t[]){n, 4, 3}));
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(y, dir, "y.npy"), ys, 2, (uint64_t[]){n, 2}));
    free(xs);
    free(ys);
}

/* `enn train` on a device lost in its second epoch: status 1, a message naming the lost
 * device and how to go on, and last.safetensors as the first epoch left it (the same
 * model as a one-epoch run's), loadable. */
Test(runtime_faults, train_cli_device_lost, .timeout = 120)
{
    use_fault_layer(0);
    char dir[TEST_PATH_MAX], x[TEST_PATH_MAX], y[TEST_PATH_MAX], log[TEST_PATH_MAX], one[TEST_PATH_MAX],
        two[TEST_PATH_MAX], a[TEST_PATH_MAX], b[TEST_PATH_MAX], args[4096], env[64], *out;
    const char *first;
    test_tmpdir(dir);
    write_regression_data(dir, 24, 11, x, y);
    test_path(log, dir, "faults.log");
    const char *common = "--batch 8 --hidden 8 --slots 4 --plain --no-plots";

    /* One epoch, no faults: what the first epoch submits, and its checkpoint. */
    snprintf(args, sizeof args, "train --data npy '%s' '%s' --epochs 1 %s --out '%s'", x, y, common,
             test_path(one, dir, "one"));
    int rc = run_enn("", log, args, &out);
    cr_assert_eq(rc, 0, "enn %s exited with %d:\n%s", args, rc, out);
    cr_assert_eq(validation_reports(out, 0, &first), 0, "validation: %s", first);
    free(out);
    uint64_t epoch_submissions, early;
    read_log(log, &epoch_submissions, &early);
    cr_assert(epoch_submissions >= 2, "one epoch made %llu submissions", (unsigned long long)epoch_submissions);

    /* Two epochs, the device lost at the second submission of the second. */
    unlink(log);
    snprintf(env, sizeof env, "ENN_FAULT_DEVICE_LOST=%llu", (unsigned long long)epoch_submissions + 2);
    snprintf(args, sizeof args, "train --data npy '%s' '%s' --epochs 2 %s --out '%s'", x, y, common,
             test_path(two, dir, "two"));
    rc = run_enn(env, log, args, &out);
    cr_assert_eq(rc, 1, "enn %s with %s exited with %d:\n%s", args, env, rc, out);
    cr_assert(strstr(out, "epoch 1/2: loss"), "the first epoch did not finish:\n%s", out);
    cr_assert(contains_nocase(out, "device was lost"), "no word of the lost device:\n%s", out);
    cr_assert(strstr(out, "last.safetensors") && strstr(out, "--resume"),
              "the message should say where the last finished epoch is and how to go on:\n%s", out);
    cr_assert_eq(validation_reports(out, 1, &first), 0, "validation: %s", first);
    free(out);
    read_log(log, &epoch_submissions, &early);
    cr_assert_eq(early, 0, "enn train destroyed %llu fence(s) of pending submissions", (unsigned long long)early);
    cr_assert(same_model(test_path(a, one, "last.safetensors"), test_path(b, two, "last.safetensors")),
              "%s is not the model the first epoch made", b);
    expect_loadable(b, 0);
    test_tmpdir_remove(dir);
}

/* The same under mpirun, the device of process 1 lost in the second epoch while process 0
 * (which alone writes) waits for its gradients: the run ends (no process left waiting),
 * status 1, process 1 names itself and says where the last finished epoch is, and that
 * last.safetensors is the first epoch's, as in an uninterrupted two-process run. */
Test(runtime_faults, train_cli_device_lost_under_mpirun, .timeout = 240)
{
    test_require_mpirun();
    use_fault_layer(0);
    char dir[TEST_PATH_MAX], x[TEST_PATH_MAX], y[TEST_PATH_MAX], one[TEST_PATH_MAX], two[TEST_PATH_MAX],
        a[TEST_PATH_MAX], b[TEST_PATH_MAX], log[TEST_PATH_MAX], args[4096], launcher[1024], *out;
    const char *first;
    test_tmpdir(dir);
    write_regression_data(dir, 48, 12, x, y);
    const char *common = "--batch 8 --hidden 8 --slots 4 --plain --no-plots";
    /* Each process logs its own counts (log.<rank>); LOSE_AT, when set, loses process 1's
     * device. Process 1's stdout is /dev/null (process 0 alone prints), so it counts its
     * own validation messages (ENN_VALIDATION=1) and reports them on stderr. */
    snprintf(launcher, sizeof launcher,
             "timeout 200 env " TEST_MPIRUN(2) " sh -c 'rank=${OMPI_COMM_WORLD_RANK:-$PMI_RANK}; "
             "export ENN_FAULT_LOG=\"%s/log.$rank\"; "
             "if [ \"$rank\" != 0 ]; then export ENN_VALIDATION=1; fi; "
             "if [ \"$rank\" = 1 ] && [ -n \"$LOSE_AT\" ]; then export ENN_FAULT_DEVICE_LOST=$LOSE_AT; fi; "
             "exec \"$0\" \"$@\"'",
             dir);

    /* One epoch, no faults: what process 1 submits in it, and the checkpoint. */
    snprintf(args, sizeof args, "train --data npy '%s' '%s' --epochs 1 %s --out '%s'", x, y, common,
             test_path(one, dir, "one"));
    int rc = run_enn(launcher, "/dev/null", args, &out);
    if (rc && strstr(out, "built without MPI")) cr_skip_test("enn was built without MPI");
    cr_assert_eq(rc, 0, "mpirun enn %s exited with %d:\n%s", args, rc, out);
    cr_assert(strstr(out, "data parallel: 2 processes"), "not two processes:\n%s", out);
    cr_assert_null(strstr(out, "validation messages"), "process 1's validation:\n%s", out);
    cr_assert_eq(validation_reports(out, 0, &first), 0, "validation: %s", first);
    free(out);
    uint64_t epoch_submissions, early;
    read_log(test_path(log, dir, "log.1"), &epoch_submissions, &early);
    cr_assert(epoch_submissions >= 2, "one epoch made %llu submissions", (unsigned long long)epoch_submissions);

    /* Two epochs, process 1's device lost at its second submission of the second. */
    char env[64];
    snprintf(env, sizeof env, "LOSE_AT=%llu", (unsigned long long)epoch_submissions + 2);
    char lose_launcher[1100];
    snprintf(lose_launcher, sizeof lose_launcher, "%s %s", env, launcher);
    snprintf(args, sizeof args, "train --data npy '%s' '%s' --epochs 2 %s --out '%s'", x, y, common,
             test_path(two, dir, "two"));
    rc = run_enn(lose_launcher, "/dev/null", args, &out);
    cr_assert_eq(rc, 1, "mpirun enn %s with %s exited with %d (124: it hung):\n%s", args, env, rc, out);
    cr_assert(strstr(out, "epoch 1/2: loss"), "the first epoch did not finish:\n%s", out);
    cr_assert(strstr(out, "process 1 of 2") && contains_nocase(out, "device was lost"),
              "process 1 did not say that its device was lost:\n%s", out);
    cr_assert(strstr(out, "last.safetensors") && strstr(out, "--resume"),
              "the message should say where the last finished epoch is and how to go on:\n%s", out);
    cr_assert_eq(validation_reports(out, 1, &first), 0, "validation: %s", first);
    free(out);
    cr_assert(same_model(test_path(a, one, "last.safetensors"), test_path(b, two, "last.safetensors")),
              "%s is not the model the first epoch made", b);
    expect_loadable(b, 0);
    test_tmpdir_remove(dir);
}
