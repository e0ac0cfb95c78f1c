/* Metrics of `enn train` and `enn eval`, pure host arithmetic (unit-tested in
 * tests/test_train_metrics.c): running loss and accuracy over batches, a confusion
 * matrix with per-class precision, recall and F1, and perplexity. (The trace monitor's
 * statistics are in trace_stats.c.) */
#ifndef ENN_TOOLS_METRICS_H
#define ENN_TOOLS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Loss and accuracy accumulated over batches. Batch losses are means over the batch's
 * counted samples (or non-pad tokens), so the total weights each by its count. */
typedef struct metric_sum {
    double loss_sum;   /* sum over batches of loss * counted */
    uint64_t correct;
    uint64_t counted;
} metric_sum;

void metric_add(metric_sum *s, float batch_loss, uint32_t correct, uint32_t counted);
double metric_loss(const metric_sum *s);     /* mean loss (NAN when nothing was counted) */
double metric_accuracy(const metric_sum *s); /* correct / counted (NAN when nothing was counted) */
/* Perplexity of a language model: exp of the mean per-token cross-entropy (natural log). */
double metric_perplexity(double mean_loss);

/* confusion[truth * classes + predicted] counts. */
typedef struct confusion {
    uint32_t classes;
    uint64_t *counts;
} confusion;

int confusion_init(confusion *c, uint32_t classes); /* 0 on success, -1 out of memory */
void confusion_free(confusion *c);
/* Adds a batch: logits [rows, classes] (the prediction is the first largest logit) and
 * the true labels [rows]. Labels >= classes are ignored. */
void confusion_add_logits(confusion *c, const float *logits, const uint32_t *labels, size_t rows);
void confusion_add(confusion *c, uint32_t truth, uint32_t predicted);

typedef struct class_scores {
    double precision; /* tp / (tp + fp); 0 when nothing was predicted as the class */
    double recall;    /* tp / (tp + fn); 0 when the class never occurs */
    double f1;        /* 2 p r / (p + r); 0 when p + r = 0 */
    uint64_t support; /* samples whose truth is the class */
} class_scores;

class_scores confusion_class(const confusion *c, uint32_t k);
double confusion_accuracy(const confusion *c);
/* Unweighted means over the classes that occur (support > 0), as scikit-learn's macro
 * average does when every class is present. */
class_scores confusion_macro(const confusion *c);


#endif

/* Prints the confusion matrix (rows: truth, columns: prediction) and per-class
 * precision, recall, F1 and support, then their macro averages. names may be NULL. */
void confusion_print(FILE *f, const confusion *c, const char *const *names);
