#include "class_plots.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "plots.h"
#include "train_report.h"

enn_status class_plots_write(const char *dir, const confusion *c, const char *const *names)
{
    (void)names; /* axes show class indices; the printed table names them */
    /* The directory and its parents (eval's --out may name a new one). */
    if (make_dirs(dir)) return enn_error(ENN_ERROR_IO, "cannot create the directory %s", dir);
    uint32_t K = c->classes;
    float *frac = malloc((size_t)K * K * sizeof *frac);
    float *x = malloc(K * sizeof *x), *p = malloc(K * sizeof *p), *r = malloc(K * sizeof *r), *f = malloc(K * sizeof *f);
    enn_status s = ENN_ERROR_OUT_OF_HOST_MEMORY;
    if (frac && x && p && r && f) {
        /* Row-normalised, so a rare class reads as clearly as a common one. */
        for (uint32_t t = 0; t < K; t++) {
            uint64_t row = 0;
            for (uint32_t k = 0; k < K; k++) row += c->counts[(size_t)t * K + k];
            for (uint32_t k = 0; k < K; k++)
                frac[(size_t)t * K + k] = row ? (float)c->counts[(size_t)t * K + k] / (float)row : NAN;
            class_scores cs = confusion_class(c, t);
            x[t] = (float)t;
            p[t] = (float)cs.precision;
            r[t] = (float)cs.recall;
            f[t] = (float)cs.f1;
        }
        char path[1024];
        plot_heatmap hm = {.title = "Confusion matrix (test set)", .x_label = "predicted class",
                           .y_label = "true class", .value_label = "fraction of the true class", .values = frac,
                           .rows = K, .cols = K, .colormap = PLOT_SEQUENTIAL, .lo = 0.0f, .hi = 1.0f};
        snprintf(path, sizeof path, "%s/confusion_matrix.png", dir);
        s = plot_heatmap_png(path, &hm);
        if (s == ENN_OK) {
            plot_panel panel = {.title = "Per-class scores (test set)", .x_label = "class", .y_label = "score",
                                .x = x, .n = K, .integer_x = 1,
                                .series = {{"precision", p}, {"recall", r}, {"F1", f}}, .series_count = 3,
                                .y_lo = 0.0f, .y_hi = 1.0f};
            snprintf(path, sizeof path, "%s/class_scores.png", dir);
            s = plot_lines_png(path, "Precision, recall and F1 per class", &panel, 1);
        }
    }
    free(frac);
    free(x);
    free(p);
    free(r);
    free(f);
    return s;
}
