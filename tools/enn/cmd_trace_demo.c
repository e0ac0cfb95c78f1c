/* enn trace-demo: a small ENN trained for a few epochs on synthetic sequences, with the
 * trace monitor drawing its pictures after every epoch. It shows what the monitor
 * writes and lets the tests check those files without a data set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "enn.h"
#include "trace_monitor.h"

#define DEMO_FEATURES 3
#define DEMO_BATCH 32
#define DEMO_TRAIN_BATCHES 4

/* xorshift64*, uniform in [-1, 1) */
static float uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (float)((*s * 0x2545F4914F6CDD1Dull) >> 40) / (float)(1u << 23) - 1.0f;
}

/* Sequences whose class is the sign of feature 0 summed over the first half: the model
 * must remember the early steps, which is what the trace is for. */
static void make_batch(uint64_t *rng, uint32_t T, float *x, uint32_t *labels)
{
    for (uint32_t b = 0; b < DEMO_BATCH; b++) {
        float sum = 0.0f;
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t f = 0; f < DEMO_FEATURES; f++) {
                float v = uniform(rng);
                x[((size_t)b * T + t) * DEMO_FEATURES + f] = v;
                if (f == 0 && t < (T + 1) / 2) sum += v;
            }
        labels[b] = sum > 0.0f;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: enn trace-demo --out DIR [--epochs E] [--hidden H] [--slots N] [--steps T]\n\n"
               "Trains a small ENN (by default h = 32, N = 16, T = 16) on synthetic sequences for E\n"
               "epochs (default 3) and writes the trace monitor's pictures and trace_stats.csv into DIR.\n");
}

int cmd_trace_demo(int argc, char **argv)
{
    const char *out = NULL;
    unsigned epochs = 3, hidden = 32, slots = 16, steps = 16;
    struct { const char *flag; unsigned *value, max; } options[] = {
        {"--epochs", &epochs, 1000}, {"--hidden", &hidden, 1024}, {"--slots", &slots, 1024}, {"--steps", &steps, 4096}};
    for (int i = 1; i < argc; i++) {
        size_t k = 0;
        while (k < sizeof options / sizeof *options && strcmp(argv[i], options[k].flag)) k++;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (k < sizeof options / sizeof *options && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v == 0 || v > options[k].max) {
                fprintf(stderr, "enn trace-demo: %s wants 1..%u, not %s\n", options[k].flag, options[k].max, argv[i]);
                return 2;
            }
            *options[k].value = (unsigned)v;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!out) {
        usage(stderr);
        return 2;
    }

    enn_model_config cfg;
    enn_model_config_init(&cfg, ENN_HEAD_CLASSIFIER);
    cfg.input_features = DEMO_FEATURES;
    cfg.max_seq_len = steps;
    cfg.max_batch = DEMO_BATCH;
    cfg.outputs = 2;
    cfg.cell.hidden = hidden;
    cfg.cell.memory_slots = slots;
    cfg.optimizer.learning_rate = 1e-2f;
    cfg.seed = 7;

    size_t xs = (size_t)DEMO_BATCH * steps * DEMO_FEATURES;
    float *x = malloc((DEMO_TRAIN_BATCHES + 1) * xs * sizeof *x);
    uint32_t *labels = malloc((DEMO_TRAIN_BATCHES + 1) * DEMO_BATCH * sizeof *labels);
    enn_context *ctx = NULL;
    enn_model *model = NULL;
    trace_monitor *mon = NULL;
    int rc = 1;
    if (!x || !labels) {
        fprintf(stderr, "enn trace-demo: out of memory\n");
        goto done;
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k <= DEMO_TRAIN_BATCHES; k++) make_batch(&rng, steps, x + k * xs, labels + k * DEMO_BATCH);
    enn_batch val = {.size = DEMO_BATCH, .seq_len = steps, .x = x + DEMO_TRAIN_BATCHES * xs,
                     .labels = labels + DEMO_TRAIN_BATCHES * DEMO_BATCH};

    if (enn_context_create(NULL, &ctx) || enn_model_create(ctx, &cfg, &model) ||
        trace_monitor_create(out, stdout, &mon) || trace_monitor_capture_initial(mon, model, &val))
        goto fail;
    for (unsigned e = 1; e <= epochs; e++) {
        double loss = 0.0;
        uint32_t correct = 0, counted = 0;
        for (int k = 0; k < DEMO_TRAIN_BATCHES; k++) {
            enn_batch b = {.size = DEMO_BATCH, .seq_len = steps, .x = x + k * xs, .labels = labels + k * DEMO_BATCH};
            enn_step_result r;
            if (enn_model_train_step(model, &b, &r)) goto fail;
            loss += r.loss;
            correct += r.correct;
            counted += r.counted;
        }
        enn_step_result v;
        if (enn_model_evaluate(model, &val, &v, NULL)) goto fail;
        trace_epoch_metrics m = {(float)(loss / DEMO_TRAIN_BATCHES), (float)correct / counted, v.loss,
                                 (float)v.correct / v.counted};
        printf("epoch %u: train loss %.4f acc %.3f, validation loss %.4f acc %.3f\n", e, m.train_loss,
               m.train_accuracy, m.val_loss, m.val_accuracy);
        if (trace_monitor_epoch(mon, e, model, &val, &m, NULL)) goto fail;
    }
    const char *first = NULL;
    uint32_t messages = enn_context_validation_messages(ctx, &first);
    if (messages) {
        fprintf(stderr, "enn trace-demo: %u validation messages, the first: %s\n", messages, first ? first : "");
        goto done;
    }
    printf("pictures in %s\n", out);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "enn trace-demo: %s\n", enn_last_error());
done:
    trace_monitor_destroy(mon);
    enn_model_destroy(model);
    enn_context_destroy(ctx);
    free(x);
    free(labels);
    return rc;
}
