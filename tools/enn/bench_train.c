/* enn bench train: whole training steps of named configurations, one line per model:
 * throughput, milliseconds per step, dispatches, submissions and host synchronisations
 * per step, and the device memory at peak; with --profile, the GPU time of every kernel
 * by name (timestamp queries), summed per step.
 *
 * The configurations are those of bench/torch_bench.py, so bench/compare.py can put the
 * two side by side. A model the library cannot build on this device (a baseline not yet
 * implemented, a vocabulary too large for memory) prints "not available" and the run goes
 * on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_values.h"
#include "commands.h"
#include "core/context.h"
#include "core/memory.h"
#include "enn.h"
#include "models/model_stats.h"

typedef struct train_config {
    const char *name;
    enn_head_kind head;
    uint32_t T, d, h, N;
    uint32_t outputs;          /* classes, or the vocabulary of a language model */
    uint32_t embedding;        /* language model: embedding width (the cell's d) */
    uint32_t units[2];         /* baselines: two stacked layers, as in the paper */
    int cpu_skip;              /* on CPU devices without --all: SKIP_* */
    const char *about;
} train_config;

enum { SKIP_NONE = 0, SKIP_PER_SAMPLE = 1, SKIP_ALL = 2 };

static const train_config configs[] = {
    {"paper-mnist", ENN_HEAD_CLASSIFIER, 28, 28, 128, 64, 10, 0, {128, 64}, SKIP_NONE,
     "MNIST rows: T=28, d=28, h=128, N=64, 10 classes"},
    {"paper-lm", ENN_HEAD_LANGUAGE_MODEL, 32, 128, 128, 64, 10000, 128, {128, 128}, SKIP_PER_SAMPLE,
     "language model: T=32, embedding 128, h=128, N=64, vocabulary 10,000"},
    {"paper-lm-full", ENN_HEAD_LANGUAGE_MODEL, 32, 128, 128, 64, 188590, 128, {128, 128}, SKIP_ALL,
     "the paper's vocabulary of 188,590 words"},
    {"long", ENN_HEAD_CLASSIFIER, 784, 1, 128, 64, 10, 0, {128, 64}, SKIP_ALL,
     "MNIST pixel by pixel: T=784, d=1, h=128, N=64"},
    {"wide", ENN_HEAD_CLASSIFIER, 28, 28, 512, 256, 10, 0, {512, 256}, SKIP_PER_SAMPLE,
     "T=28, d=28, h=512, N=256"},
};
#define CONFIG_COUNT (sizeof configs / sizeof configs[0])

typedef struct train_model {
    const char *name;          /* the --model name */
    const char *peer;          /* bench/torch_bench.py's name for the same model */
    enn_model_kind kind;
    enn_trace_mode trace;
    enn_trace_gradient gradient;
} train_model;

static const train_model models[] = {
    {"enn", "ENN-shared", ENN_MODEL_ENN, ENN_TRACE_SHARED, ENN_TRACE_GRADIENT_EXACT},
    {"enn-per-sample", "ENN-per-sample", ENN_MODEL_ENN, ENN_TRACE_PER_SAMPLE, ENN_TRACE_GRADIENT_EXACT},
    {"enn-stop", "ENN-stop", ENN_MODEL_ENN, ENN_TRACE_SHARED, ENN_TRACE_GRADIENT_STOP},
    {"rnn", "RNN", ENN_MODEL_RNN, 0, 0},
    {"gru", "GRU", ENN_MODEL_GRU, 0, 0},
    {"lstm", "LSTM", ENN_MODEL_LSTM, 0, 0},
};
#define MODEL_COUNT (sizeof models / sizeof models[0])

typedef struct train_options {
    int config_on[CONFIG_COUNT], model_on[MODEL_COUNT];
    uint32_t steps, warmup;
    uint32_t batch, seq;       /* 0: the configuration's */
    uint32_t recompute;        /* the ENN's trace recompute interval (0: store all) */
    int profile, all;
} train_options;

/* GPU time of one kernel name, summed over the profiled steps. */
typedef struct kernel_time {
    char name[64];
    double gpu_ms;
    uint64_t count;
} kernel_time;

typedef struct profile {
    kernel_time *k;
    uint32_t n, cap;
} profile;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int profile_add(profile *p, const enn_timing *t)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (!strcmp(p->k[i].name, t->name)) {
            p->k[i].gpu_ms += t->gpu_ms;
            p->k[i].count += t->count;
            return 0;
        }
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? 2 * p->cap : 32;
        kernel_time *k = realloc(p->k, cap * sizeof *k);
        if (!k) return 1;
        p->k = k;
        p->cap = cap;
    }
    kernel_time *e = &p->k[p->n++];
    snprintf(e->name, sizeof e->name, "%s", t->name);
    e->gpu_ms = t->gpu_ms;
    e->count = t->count;
    return 0;
}

static int by_time_desc(const void *a, const void *b)
{
    double x = ((const kernel_time *)a)->gpu_ms, y = ((const kernel_time *)b)->gpu_ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void profile_print(profile *p, uint32_t steps, double host_ms)
{
    qsort(p->k, p->n, sizeof *p->k, by_time_desc);
    double total = 0;
    for (uint32_t i = 0; i < p->n; i++) total += p->k[i].gpu_ms;
    printf("    %-32s %12s %12s %7s\n", "kernel", "calls/step", "gpu ms/step", "share");
    for (uint32_t i = 0; i < p->n; i++)
        printf("    %-32s %12.1f %12.3f %6.1f%%\n", p->k[i].name, (double)p->k[i].count / steps,
               p->k[i].gpu_ms / steps, total > 0 ? 100.0 * p->k[i].gpu_ms / total : 0.0);
    printf("    %-32s %12s %12.3f   (host %.3f ms/step while profiling)\n", "sum of kernels", "", total / steps,
           host_ms);
    /* A language model's output layer on its own (compare bench/torch_bench.py --configs
     * lm-head), without its share of the optimiser step. */
    double head = 0;
    for (uint32_t i = 0; i < p->n; i++)
        if (!strncmp(p->k[i].name, "lm.", 3) || !strncmp(p->k[i].name, "softmax_xent", 12)) head += p->k[i].gpu_ms;
    if (head > 0)
        printf("    %-32s %12s %12.3f   (lm.* and softmax_xent_*; the optimiser step not included)\n",
               "output layer", "", head / steps);
}

/* Deterministic inputs of one batch, in the caller's layout (sample-major). */
typedef struct batch_data {
    float *x;
    uint32_t *labels, *tokens, *targets;
    enn_batch batch;
} batch_data;

static void batch_free(batch_data *b)
{
    free(b->x);
    free(b->labels);
    free(b->tokens);
    free(b->targets);
}

static uint32_t next_random(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

static int batch_make(const train_config *c, uint32_t B, uint32_t T, batch_data *out)
{
    memset(out, 0, sizeof *out);
    uint64_t seed = 12345;
    out->batch.size = B;
    out->batch.seq_len = T;
    if (c->head == ENN_HEAD_LANGUAGE_MODEL) {
        out->tokens = malloc((size_t)B * T * sizeof *out->tokens);
        out->targets = malloc((size_t)B * T * sizeof *out->targets);
        if (!out->tokens || !out->targets) return 1;
        for (size_t i = 0; i < (size_t)B * T; i++) out->tokens[i] = 1 + next_random(&seed) % (c->outputs - 1);
        /* Next-token targets; the last position is padding (0), as bench/torch_bench.py. */
        for (uint32_t b = 0; b < B; b++)
            for (uint32_t t = 0; t < T; t++)
                out->targets[(size_t)b * T + t] = t + 1 < T ? out->tokens[(size_t)b * T + t + 1] : 0;
        out->batch.tokens = out->tokens;
        out->batch.targets = out->targets;
    } else {
        out->x = malloc((size_t)B * T * c->d * sizeof *out->x);
        out->labels = malloc((size_t)B * sizeof *out->labels);
        if (!out->x || !out->labels) return 1;
        for (size_t i = 0; i < (size_t)B * T * c->d; i++) out->x[i] = (float)(next_random(&seed) >> 8) / 16777216.0f;
        for (uint32_t b = 0; b < B; b++) out->labels[b] = next_random(&seed) % c->outputs;
        out->batch.x = out->x;
        out->batch.labels = out->labels;
    }
    return 0;
}

static void model_config(const train_config *c, const train_model *tm, uint32_t B, uint32_t T, enn_model_config *mc)
{
    enn_model_config_init(mc, c->head);
    mc->kind = tm->kind;
    mc->max_batch = B;
    mc->max_seq_len = T;
    mc->outputs = c->outputs;
    if (c->head == ENN_HEAD_LANGUAGE_MODEL) {
        mc->lm_input = ENN_LM_EMBEDDING;
        mc->embedding_dim = c->embedding;
    } else {
        mc->input_features = c->d;
    }
    mc->cell.hidden = c->h;
    mc->cell.memory_slots = c->N;
    mc->cell.trace_mode = tm->trace;
    mc->cell.trace_gradient = tm->gradient;
    if (tm->kind != ENN_MODEL_ENN) {
        /* Keras's stacked baselines classify from the last state (bench/enn_torch.py too). */
        mc->layers = 2;
        mc->layer_units[0] = c->units[0];
        mc->layer_units[1] = c->units[1];
        mc->pooling = ENN_POOL_LAST;
    }
    mc->seed = 1;
}

static const char *line_prefix(char *buf, size_t n, const train_config *c, const train_model *tm)
{
    snprintf(buf, n, "%-14s %-15s", c->name, tm->name);
    return buf;
}

/* Runs one configuration and model. Returns 0 when it ran or is not available, 1 on failure. */
static int bench_one(enn_context *ctx, const train_config *c, const train_model *tm, const train_options *o)
{
    char prefix[64];
    line_prefix(prefix, sizeof prefix, c, tm);
    uint32_t B = o->batch ? o->batch : 128, T = o->seq ? o->seq : c->T;
    enn_model_config mc;
    model_config(c, tm, B, T, &mc);
    if (tm->kind == ENN_MODEL_ENN) mc.cell.recompute_interval = o->recompute;
    uint64_t params = 0;
    if (enn_model_parameter_count(&mc, &params, NULL) != ENN_OK) params = 0;

    enn_memory_reset_peak(ctx);
    enn_model *model = NULL;
    enn_status s = enn_model_create(ctx, &mc, &model);
    if (s == ENN_ERROR_UNSUPPORTED || s == ENN_ERROR_OUT_OF_DEVICE_MEMORY) {
        printf("%s not available: %s\n", prefix, enn_last_error());
        fflush(stdout);
        return 0;
    }
    if (s != ENN_OK) {
        printf("%s failed: %s: %s\n", prefix, enn_status_name(s), enn_last_error());
        return 1;
    }
    batch_data data;
    int rc = 1;
    profile prof = {0};
    if (batch_make(c, B, T, &data)) {
        printf("%s failed: out of host memory for the batch\n", prefix);
        goto done;
    }
    enn_step_result res = {0};
    /* Warm-up: the first step creates pipelines (or loads them from the cache). */
    for (uint32_t i = 0; i < o->warmup; i++)
        if ((s = enn_model_train_step(model, &data.batch, &res)) != ENN_OK) goto failed;

    uint64_t waits0 = ctx->host_waits;
    double t0 = now_s(), record_ms = 0;
    enn_model_step_stats st;
    for (uint32_t i = 0; i < o->steps; i++) {
        if ((s = enn_model_train_step(model, &data.batch, &res)) != ENN_OK) goto failed;
        enn_model_last_step_stats(model, &st);
        record_ms += st.record_ms;
    }
    double seconds = now_s() - t0;
    double syncs = (double)(ctx->host_waits - waits0) / o->steps;
    enn_memory_stats mem;
    enn_memory_get_stats(ctx, &mem);

    int lm = c->head == ENN_HEAD_LANGUAGE_MODEL;
    double per_step = lm ? (double)B * T : B;
    printf("%s %11llu %4u %4u %10.1f %-9s %9.2f %9u %8u %8.1f %9.1f %8.4f %8.2f\n", prefix, (unsigned long long)params,
           B, T, per_step * o->steps / seconds, lm ? "tokens/s" : "samples/s", seconds * 1e3 / o->steps,
           st.dispatches, st.submits, syncs, mem.peak_used_bytes / 1048576.0, res.loss, record_ms / o->steps);
    fflush(stdout);

    if (o->profile) {
        if (!ctx->enabled.timestamps) {
            printf("    (no profile: the device has no timestamp queries, or ENN_DISABLE_TIMESTAMPS is set)\n");
        } else {
            enn_model_set_profiling(model, 1);
            double p0 = now_s();
            for (uint32_t i = 0; i < o->steps; i++) {
                if ((s = enn_model_train_step(model, &data.batch, &res)) != ENN_OK) goto failed;
                const enn_timing *tm_list;
                uint32_t n = enn_model_last_step_timings(model, &tm_list);
                for (uint32_t k = 0; k < n; k++)
                    if (profile_add(&prof, &tm_list[k])) {
                        printf("%s failed: out of host memory for the profile\n", prefix);
                        goto done;
                    }
            }
            double host_ms = (now_s() - p0) * 1e3 / o->steps;
            enn_model_set_profiling(model, 0);
            profile_print(&prof, o->steps, host_ms);
        }
        fflush(stdout);
    }
    rc = 0;
    goto done;
failed:
    printf("%s failed: %s: %s\n", prefix, enn_status_name(s), enn_last_error());
done:
    free(prof.k);
    batch_free(&data);
    enn_model_destroy(model);
    return rc;
}

static void usage(void)
{
    printf("usage: enn bench train [options]\n\n"
           "Whole training steps (forward, loss, backward through time, clipping, Adam), one line\n"
           "per configuration and model: throughput (samples/s; tokens/s for language models),\n"
           "milliseconds per step (host clock, batch upload and loss read-back included),\n"
           "dispatches and queue submissions in the step's recording, host synchronisations per\n"
           "step (every time the host blocked on a fence), device memory at peak (sub-allocator\n"
           "bytes in use), the last step's loss, and rec ms: the host time to record and submit\n"
           "a step, during which the device waits (the step is submitted whole).\n\n"
           "options:\n"
           "  --config NAME[,NAME]  configurations (default: all but those skipped on CPU devices)\n"
           "  --model NAME[,NAME]   models (default: all)\n"
           "  --steps N             timed steps per model (default 5)\n"
           "  --warmup N            untimed steps first (default 1)\n"
           "  --batch B, --seq T    override the batch size (128) and sequence length\n"
           "  --recompute K         ENN: store the trace every K steps and recompute the others in\n"
           "                        the backward pass (compare ms/step and peak MiB with K = 0)\n"
           "  --profile             then run N more steps with timestamp queries and print the GPU\n"
           "                        time of every kernel by name, per step (language models: also\n"
           "                        the output layer's total, beside torch_bench.py's lm-head)\n"
           "  --all                 on CPU devices (lavapipe), also the slow combinations\n\n"
           "configurations:\n");
    for (size_t i = 0; i < CONFIG_COUNT; i++) printf("  %-14s %s\n", configs[i].name, configs[i].about);
    printf("models:\n  ");
    for (size_t i = 0; i < MODEL_COUNT; i++) printf("%s%s", i ? ", " : "", models[i].name);
    printf("\n  (enn: shared trace, exact gradient; enn-stop: stop-gradient trace; baselines: two\n"
           "  stacked layers classifying from the last state, as bench/torch_bench.py)\n"
           "The device is ENN_DEVICE's or the best one; ENN_VALIDATION=1 turns the validation layer on\n"
           "(any message makes the command fail).\n");
}

/* Marks every name of a comma-separated list; returns the first unknown name, or NULL. */
static const char *select_names(const char *list, int *on, size_t count, const char *(*name_of)(size_t))
{
    static char unknown[64];
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (size_t i = 0; i < count; i++)
            if (strlen(name_of(i)) == len && !strncmp(name_of(i), p, len)) on[i] = found = 1;
        if (!found && len) {
            snprintf(unknown, sizeof unknown, "%.*s", (int)len, p);
            return unknown;
        }
        p += len;
        if (*p == ',') p++;
    }
    return NULL;
}

static const char *config_name(size_t i) { return configs[i].name; }
static const char *model_name(size_t i) { return models[i].name; }

int cmd_bench_train(int argc, char **argv)
{
    train_options o = {.steps = 5, .warmup = 1};
    int configs_given = 0, models_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL, *bad = NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) { usage(); return 0; }
        else if (!strcmp(arg, "--profile")) o.profile = 1;
        else if (!strcmp(arg, "--all")) o.all = 1;
        else if (val && !strcmp(arg, "--config")) {
            configs_given = 1;
            bad = select_names(val, o.config_on, CONFIG_COUNT, config_name);
            i++;
        } else if (val && !strcmp(arg, "--model")) {
            models_given = 1;
            bad = select_names(val, o.model_on, MODEL_COUNT, model_name);
            i++;
        } else if (val && (!strcmp(arg, "--steps") || !strcmp(arg, "--warmup") || !strcmp(arg, "--batch") ||
                           !strcmp(arg, "--seq") || !strcmp(arg, "--recompute"))) {
            /* Whole numbers in range: atoi let -1 through as 4294967295 steps. */
            int steps = !strcmp(arg, "--steps"), warmup = !strcmp(arg, "--warmup"), batch = !strcmp(arg, "--batch");
            uint32_t *field = steps ? &o.steps : warmup ? &o.warmup : batch ? &o.batch
                            : !strcmp(arg, "--seq") ? &o.seq : &o.recompute;
            uint32_t min = steps || batch || field == &o.seq ? 1 : 0, max = batch ? 65536 : 1000000;
            if (enn_cli_u32(arg, val, min, max, field)) return 2;
            i++;
        } else {
            fprintf(stderr, "enn bench train: unknown option '%s'%s (see --help)\n", arg,
                    val ? "" : " (or a flag without its value)");
            return 2;
        }
        if (bad) { fprintf(stderr, "enn bench train: no configuration or model '%s' (see --help)\n", bad); return 2; }
    }
    if (!o.steps) { fprintf(stderr, "enn bench train: --steps must be at least 1\n"); return 2; }
    for (size_t i = 0; i < CONFIG_COUNT; i++) if (!configs_given) o.config_on[i] = 1;
    for (size_t i = 0; i < MODEL_COUNT; i++) if (!models_given) o.model_on[i] = 1;

    enn_context *ctx = NULL;
    if (enn_context_create(NULL, &ctx) != ENN_OK) {
        fprintf(stderr, "enn bench train: %s\n", enn_last_error());
        return 1;
    }
    int cpu = ctx->caps.device_type == ENN_DEVICE_CPU;
    printf("device: %s (%s %s)%s\n", ctx->caps.device_name, ctx->caps.driver_name, ctx->caps.driver_info,
           ctx->enabled.timestamps ? "" : "; no timestamp queries");
    printf("%u timed steps after %u warm-up, float32; ms/step from the host clock\n", o.steps, o.warmup);
    printf("%-14s %-15s %11s %4s %4s %20s %9s %9s %8s %8s %9s %8s %8s\n", "config", "model", "params", "B", "T",
           "throughput", "ms/step", "disp/step", "sub/step", "sync/stp", "peak MiB", "loss", "rec ms");
    int rc = 0;
    for (size_t ci = 0; ci < CONFIG_COUNT; ci++) {
        if (!o.config_on[ci]) continue;
        const train_config *c = &configs[ci];
        for (size_t mi = 0; mi < MODEL_COUNT; mi++) {
            if (!o.model_on[mi]) continue;
            const train_model *tm = &models[mi];
            int skip = cpu && !o.all &&
                       (c->cpu_skip == SKIP_ALL || (c->cpu_skip == SKIP_PER_SAMPLE && tm->trace == ENN_TRACE_PER_SAMPLE));
            if (skip) {
                char prefix[64];
                printf("%s skipped on a CPU device (slow; --all runs it)\n", line_prefix(prefix, sizeof prefix, c, tm));
                continue;
            }
            if (bench_one(ctx, c, tm, &o)) rc = 1;
        }
    }
    const char *first = NULL;
    uint32_t messages = enn_context_validation_messages(ctx, &first);
    if (messages) {
        fprintf(stderr, "enn bench train: %u validation message%s; the first: %s\n", messages,
                messages == 1 ? "" : "s", first ? first : "");
        rc = 1;
    }
    enn_context_destroy(ctx);
    return rc;
}
