/* enn eval: loads a checkpoint and evaluates it on the test part of a data set: loss,
 * accuracy, perplexity (language models), a confusion matrix and per-class
 * precision/recall/F1 (classifiers), and with --predictions each sample's prediction. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "core/atomic_file.h"
#include "enn.h"
#include "class_plots.h"
#include "metrics.h"
#include "train_data.h"
#include "train_loop.h"
#include "train_options.h"

int cmd_eval(int argc, char **argv)
{
    train_options o;
    train_options_init(&o);
    int parsed = train_options_parse(&o, argc, argv, 1);
    if (parsed) return parsed > 0 ? 0 : 2;

    int rc = 1;
    train_data data;
    enn_context *ctx = NULL;
    enn_model *model = NULL;
    batch_buffers buf = {0};
    confusion matrix = {0};
    FILE *predictions = NULL;
    enn_atomic_file pred_file = {0}; /* replaced whole or left as it was */
    if (train_data_layout_from_checkpoint(&o, o.checkpoint) || train_data_load(&o, 0, &data)) return 1;
    if (!data.test.n) {
        fprintf(stderr, "enn eval: the data set has no test part\n");
        goto done;
    }
    enn_context_options copt = {.device = o.device[0] ? o.device : NULL};
    if (enn_context_create(&copt, &ctx)) goto fail;
    if (enn_model_load(ctx, o.checkpoint, &model)) goto fail;
    const enn_model_config *c = enn_model_get_config(model);
    static const char *const tasks[] = {"classifier", "regressor", "language model"};
    const char *problem = NULL;
    char detail[160] = "";
    if (c->head != data.head) {
        problem = "task";
        snprintf(detail, sizeof detail, "a %s, the data a %s's", tasks[c->head], tasks[data.head]);
    } else if (c->head != ENN_HEAD_LANGUAGE_MODEL && c->input_features != data.test.d) {
        /* (A language model reads token ids, embedded or as one float feature: no width.) */
        problem = "input features";
        snprintf(detail, sizeof detail, "%u per step, the data %u", c->input_features, data.test.d);
    } else if (c->max_seq_len < data.test.T) {
        problem = "sequence length";
        snprintf(detail, sizeof detail, "at most %u steps, the data %u", c->max_seq_len, data.test.T);
    } else if (data.head == ENN_HEAD_CLASSIFIER ? c->outputs < data.outputs : c->outputs != data.outputs) {
        problem = data.head == ENN_HEAD_CLASSIFIER ? "classes" : data.head == ENN_HEAD_REGRESSOR ? "targets" : "vocabulary";
        snprintf(detail, sizeof detail, "%u, the data %u", c->outputs, data.outputs);
    }
    if (problem) {
        fprintf(stderr, "enn eval: %s does not fit this data set: %s (%s)\n", o.checkpoint, problem, detail);
        goto done;
    }
    if (batch_buffers_init(&buf, &data.test, c, c->max_batch) ||
        (data.head == ENN_HEAD_CLASSIFIER && confusion_init(&matrix, c->outputs))) {
        fprintf(stderr, "enn eval: out of memory\n");
        goto done;
    }
    if (o.predictions[0] && data.head == ENN_HEAD_LANGUAGE_MODEL) {
        fprintf(stderr, "enn eval: --predictions writes classifiers' and regressors' predictions, not a language "
                        "model's tokens\n");
        goto done;
    }
    if (o.predictions[0]) {
        if (enn_atomic_open(&pred_file, o.predictions) != ENN_OK) goto fail;
        predictions = pred_file.f;
    }
    metric_sum sum;
    if (evaluate_dataset(model, &data.test, &buf, &sum, matrix.counts ? &matrix : NULL, "eval", o.plain, NULL,
                         predictions))
        goto fail;
    if (predictions) {
        predictions = NULL;
        if (enn_atomic_commit(&pred_file) != ENN_OK) goto fail;
        printf("predictions: %s\n", o.predictions);
    }
    double loss = metric_loss(&sum);
    printf("eval: %llu %s, loss %.4f", (unsigned long long)sum.counted,
           data.head == ENN_HEAD_LANGUAGE_MODEL ? "tokens" : "samples", loss);
    if (data.head == ENN_HEAD_LANGUAGE_MODEL) printf(", perplexity %.2f", metric_perplexity(loss));
    printf("\n");
    if (matrix.counts && o.report) confusion_print(stdout, &matrix, train_data_class_names(o.data.kind, matrix.classes));
    if (matrix.counts && o.plots && o.out_dir[0]) {
        if (class_plots_write(o.out_dir, &matrix, train_data_class_names(o.data.kind, matrix.classes)))
            fprintf(stderr, "enn eval: could not draw the confusion matrix: %s\n", enn_last_error());
        else
            printf("pictures: %s/confusion_matrix.png, %s/class_scores.png\n", o.out_dir, o.out_dir);
    }
    if (data.head != ENN_HEAD_REGRESSOR) printf("accuracy %.4f\n", metric_accuracy(&sum));
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "enn eval: %s\n", enn_last_error());
done:
    if (predictions) enn_atomic_abort(&pred_file);
    confusion_free(&matrix);
    batch_buffers_free(&buf);
    enn_model_destroy(model);
    enn_context_destroy(ctx);
    train_data_free(&data);
    return rc;
}
