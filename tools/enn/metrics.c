/* Metrics of `enn train` and `enn eval` (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>

void metric_add(metric_sum *s, float batch_loss, uint32_t correct, uint32_t counted)
{
    s->loss_sum += (double)batch_loss * counted;
    s->correct += correct;
    s->counted += counted;
}

double metric_loss(const metric_sum *s) { return s->counted ? s->loss_sum / (double)s->counted : NAN; }
double metric_accuracy(const metric_sum *s) { return s->counted ? (double)s->correct / (double)s->counted : NAN; }
double metric_perplexity(double mean_loss) { return exp(mean_loss); }

int confusion_init(confusion *c, uint32_t classes)
{
    c->classes = classes;
    c->counts = calloc((size_t)classes * classes, sizeof *c->counts);
    return c->counts ? 0 : -1;
}

void confusion_free(confusion *c)
{
    free(c->counts);
    c->counts = NULL;
    c->classes = 0;
}

void confusion_add(confusion *c, uint32_t truth, uint32_t predicted)
{
    if (truth < c->classes && predicted < c->classes) c->counts[(size_t)truth * c->classes + predicted]++;
}

void confusion_add_logits(confusion *c, const float *logits, const uint32_t *labels, size_t rows)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = logits + r * c->classes;
        uint32_t best = 0;
        for (uint32_t k = 1; k < c->classes; k++)
            if (row[k] > row[best]) best = k;
        confusion_add(c, labels[r], best);
    }
}

class_scores confusion_class(const confusion *c, uint32_t k)
{
    uint64_t tp = c->counts[(size_t)k * c->classes + k], predicted = 0, actual = 0;
    for (uint32_t j = 0; j < c->classes; j++) {
        predicted += c->counts[(size_t)j * c->classes + k];
        actual += c->counts[(size_t)k * c->classes + j];
    }
    class_scores s = {0};
    s.support = actual;
    s.precision = predicted ? (double)tp / (double)predicted : 0.0;
    s.recall = actual ? (double)tp / (double)actual : 0.0;
    s.f1 = s.precision + s.recall > 0.0 ? 2.0 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
    return s;
}

double confusion_accuracy(const confusion *c)
{
    uint64_t hits = 0, total = 0;
    for (uint32_t i = 0; i < c->classes; i++)
        for (uint32_t j = 0; j < c->classes; j++) {
            total += c->counts[(size_t)i * c->classes + j];
            if (i == j) hits += c->counts[(size_t)i * c->classes + j];
        }
    return total ? (double)hits / (double)total : NAN;
}

class_scores confusion_macro(const confusion *c)
{
    class_scores m = {0};
    uint32_t present = 0;
    for (uint32_t k = 0; k < c->classes; k++) {
        class_scores s = confusion_class(c, k);
        if (!s.support) continue;
        m.precision += s.precision;
        m.recall += s.recall;
        m.f1 += s.f1;
        m.support += s.support;
        present++;
    }
    if (present) {
        m.precision /= present;
        m.recall /= present;
        m.f1 /= present;
    }
    return m;
}

void confusion_print(FILE *f, const confusion *c, const char *const *names)
{
    fprintf(f, "confusion matrix (rows: true class, columns: predicted):\n      ");
    for (uint32_t j = 0; j < c->classes; j++) fprintf(f, " %6u", j);
    fprintf(f, "\n");
    for (uint32_t i = 0; i < c->classes; i++) {
        fprintf(f, "%6u", i);
        for (uint32_t j = 0; j < c->classes; j++)
            fprintf(f, " %6llu", (unsigned long long)c->counts[(size_t)i * c->classes + j]);
        fprintf(f, "\n");
    }
    fprintf(f, "%-18s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support");
    for (uint32_t k = 0; k < c->classes; k++) {
        class_scores s = confusion_class(c, k);
        char name[40];
        if (names) snprintf(name, sizeof name, "%u %s", k, names[k]);
        else snprintf(name, sizeof name, "%u", k);
        fprintf(f, "%-18s %9.4f %9.4f %9.4f %9llu\n", name, s.precision, s.recall, s.f1,
                (unsigned long long)s.support);
    }
    class_scores m = confusion_macro(c);
    fprintf(f, "%-18s %9.4f %9.4f %9.4f %9llu\n", "macro average", m.precision, m.recall, m.f1,
            (unsigned long long)m.support);
}
