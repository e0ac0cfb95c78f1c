/* Batches, whole-set evaluation, weight copies and the trace monitor (see train_loop.h). */
#include "train_loop.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "progress.h"

int batch_buffers_init(batch_buffers *b, const enn_dataset *ds, const enn_model_config *c, uint32_t capacity)
{
    memset(b, 0, sizeof *b);
    b->capacity = capacity;
    b->token_as_float = c->head == ENN_HEAD_LANGUAGE_MODEL && c->lm_input == ENN_LM_FLOAT_FEATURE;
    size_t steps = (size_t)capacity * ds->T;
    int fail = 0;
#define ALLOC(field, n, cond)                                    \
    if (cond) {                                                  \
        b->field = malloc((n) * sizeof *b->field);               \
        fail |= !b->field;                                       \
    }
    ALLOC(x, steps * ds->d, ds->x);
    ALLOC(x, steps, b->token_as_float);
    ALLOC(y, (size_t)capacity * ds->k, ds->y);
    ALLOC(labels, capacity, ds->labels);
    ALLOC(tokens, steps, ds->tokens);
    ALLOC(targets, steps, ds->targets);
    if (c->head == ENN_HEAD_CLASSIFIER) {
        b->classes = c->outputs;
        ALLOC(logits, (size_t)capacity * c->outputs, 1);
    }
#undef ALLOC
    if (fail) batch_buffers_free(b);
    return fail ? -1 : 0;
}

void batch_buffers_free(batch_buffers *b)
{
    free(b->x);
    free(b->y);
    free(b->labels);
    free(b->tokens);
    free(b->targets);
    free(b->logits);
    memset(b, 0, sizeof *b);
}

enn_status batch_gather(batch_buffers *b, const enn_dataset *ds, const size_t *order, size_t first, uint32_t count,
                        enn_batch *out)
{
    if (count > b->capacity) count = b->capacity;
    enn_status s = enn_dataset_gather(ds, order, first, count, 0, b->token_as_float ? NULL : b->x, b->labels, b->y,
                                      b->tokens, b->targets);
    if (s) return s;
    if (b->token_as_float)
        for (size_t i = 0; i < (size_t)count * ds->T; i++) b->x[i] = (float)b->tokens[i];
    *out = (enn_batch){.size = count, .seq_len = ds->T, .x = b->x, .tokens = b->tokens, .labels = b->labels,
                       .y = b->y, .targets = b->targets};
    return ENN_OK;
}

/* One CSV row per sample (per sample and step for a regressor with return_sequences) of
 * samples [first, first + count): see train_loop.h. */
static void write_predictions(FILE *f, const enn_model_config *c, const enn_batch *b, const float *out, size_t first)
{
    for (uint32_t i = 0; i < b->size; i++) {
        if (c->head == ENN_HEAD_CLASSIFIER) {
            const float *z = out + (size_t)i * c->outputs;
            uint32_t best = 0;
            for (uint32_t k = 1; k < c->outputs; k++)
                if (z[k] > z[best]) best = k;   /* the lowest index on ties, as the accuracy counts */
            double total = 0;
            for (uint32_t k = 0; k < c->outputs; k++) total += exp((double)z[k] - z[best]);
            fprintf(f, "%zu,%u,%u", first + i, b->labels[i], best);
            for (uint32_t k = 0; k < c->outputs; k++) fprintf(f, ",%.6g", exp((double)z[k] - z[best]) / total);
            fprintf(f, "\n");
            continue;
        }
        uint32_t steps = c->return_sequences ? b->seq_len : 1, k = c->outputs;
        for (uint32_t t = 0; t < steps; t++) {
            const float *y = b->y + ((size_t)i * steps + t) * k, *o = out + ((size_t)i * steps + t) * k;
            fprintf(f, "%zu", first + i);
            if (c->return_sequences) fprintf(f, ",%u", t);
            for (uint32_t j = 0; j < k; j++) fprintf(f, ",%.9g", y[j]);
            for (uint32_t j = 0; j < k; j++) fprintf(f, ",%.9g", o[j]);
            fprintf(f, "\n");
        }
    }
}

static void write_predictions_header(FILE *f, const enn_model_config *c)
{
    if (c->head == ENN_HEAD_CLASSIFIER) {
        fprintf(f, "index,label,predicted");
        for (uint32_t k = 0; k < c->outputs; k++) fprintf(f, ",p_%u", k);
    } else {
        fprintf(f, c->return_sequences ? "index,step" : "index");
        for (uint32_t j = 0; j < c->outputs; j++) fprintf(f, ",target_%u", j);
        for (uint32_t j = 0; j < c->outputs; j++) fprintf(f, ",output_%u", j);
    }
    fprintf(f, "\n");
}

enn_status evaluate_dataset(enn_model *model, const enn_dataset *ds, batch_buffers *buffers, metric_sum *sum,
                            confusion *matrix, const char *label, int plain, volatile sig_atomic_t *stop,
                            FILE *predictions)
{
    *sum = (metric_sum){0};
    const enn_model_config *c = enn_model_get_config(model);
    float *outputs = matrix || predictions ? buffers->logits : NULL;   /* classifier logits */
    float *regression = NULL;
    if (predictions) {
        if (c->head == ENN_HEAD_LANGUAGE_MODEL)
            return enn_error(ENN_ERROR_UNSUPPORTED, "predictions: written for classifiers and regressors, not for a "
                                                    "language model's tokens");
        if (c->head == ENN_HEAD_REGRESSOR) {
            size_t per_row = (size_t)(c->return_sequences ? ds->T : 1) * c->outputs;
            outputs = regression = malloc((size_t)buffers->capacity * per_row * sizeof *regression);
            if (!regression) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "predictions: outputs of a batch");
        }
        write_predictions_header(predictions, c);
    }
    size_t batches = enn_batch_count(ds->n, buffers->capacity, 0);
    progress bar;
    if (label) progress_begin(&bar, stderr, plain, label, batches);
    enn_status s = ENN_OK;
    for (size_t i = 0; i < batches && !(stop && *stop) && s == ENN_OK; i++) {
        size_t first = i * buffers->capacity;
        uint32_t count = (uint32_t)(ds->n - first < buffers->capacity ? ds->n - first : buffers->capacity);
        enn_batch batch;
        enn_step_result r;
        s = batch_gather(buffers, ds, NULL, first, count, &batch);
        if (s == ENN_OK) s = enn_model_evaluate(model, &batch, &r, outputs);
        if (s != ENN_OK) break;
        metric_add(sum, r.loss, r.correct, r.counted);
        if (matrix && outputs) confusion_add_logits(matrix, outputs, buffers->labels, count);
        if (predictions) write_predictions(predictions, c, &batch, outputs, first);
        if (label)
            progress_update(&bar, i + 1, count, metric_loss(sum),
                            c->head == ENN_HEAD_REGRESSOR ? NAN : metric_accuracy(sum));
    }
    if (label) progress_end(&bar);
    free(regression);
    if (s == ENN_OK && predictions && (fflush(predictions) || ferror(predictions)))
        s = enn_error(ENN_ERROR_IO, "writing the predictions failed: %s", strerror(errno));
    return s;
}

enn_status weights_take(enn_model *model, weights *w)
{
    if (!w->data) {
        w->count = enn_model_parameter_tensors(model);
        w->data = calloc(w->count, sizeof *w->data);
        w->sizes = calloc(w->count, sizeof *w->sizes);
        w->names = calloc(w->count, sizeof *w->names);
        if (!w->data || !w->sizes || !w->names) {
            weights_free(w);
            return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "copying the weights");
        }
        for (uint32_t i = 0; i < w->count; i++) {
            enn_tensor_desc d;
            enn_status s = enn_model_parameter_desc(model, i, &d);
            if (s) return s;
            size_t n = 1;
            for (uint32_t r = 0; r < d.rank; r++) n *= d.shape[r];
            snprintf(w->names[i], sizeof w->names[i], "%s", d.name);
            w->sizes[i] = n;
            w->data[i] = malloc(n * sizeof(float));
            if (!w->data[i]) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "copying %s", d.name);
        }
    }
    for (uint32_t i = 0; i < w->count; i++) {
        enn_status s = enn_model_read(model, w->names[i], w->data[i], w->sizes[i]);
        if (s) return s;
    }
    return ENN_OK;
}

enn_status weights_restore(enn_model *model, const weights *w)
{
    for (uint32_t i = 0; i < w->count; i++) {
        enn_status s = enn_model_write(model, w->names[i], w->data[i], w->sizes[i]);
        if (s) return s;
    }
    return ENN_OK;
}

void weights_free(weights *w)
{
    for (uint32_t i = 0; w->data && i < w->count; i++) free(w->data[i]);
    free(w->data);
    free(w->sizes);
    free(w->names);
    memset(w, 0, sizeof *w);
}

enn_status trace_sample_stats(enn_model *model, const enn_dataset *ds, batch_buffers *buffers, trace_stats *out)
{
    const enn_model_config *c = enn_model_get_config(model);
    if (c->kind != ENN_MODEL_ENN) return enn_error(ENN_ERROR_UNSUPPORTED, "only ENN models have a trace");
    uint32_t count = (uint32_t)(ds->n < 64 ? ds->n : 64);
    if (count > buffers->capacity) count = buffers->capacity;
    enn_batch batch;
    enn_step_result r;
    enn_status s = batch_gather(buffers, ds, NULL, 0, count, &batch);
    if (!s) s = enn_model_evaluate(model, &batch, &r, NULL);
    if (s) return s;
    size_t n = (size_t)c->cell.memory_slots * c->cell.hidden * (c->cell.trace_mode == ENN_TRACE_PER_SAMPLE ? count : 1);
    float *H = malloc(n * sizeof *H);
    if (!H) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "reading the trace");
    s = enn_model_read(model, "out.H_T", H, n);
    if (!s) *out = trace_stats_compute(H, n);
    free(H);
    return s;
}
