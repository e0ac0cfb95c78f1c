/* The classifier's test results as pictures (the paper's Figures 4 and 5): the confusion
 * matrix and the per-class precision, recall and F1. */
#ifndef ENN_TOOLS_CLASS_PLOTS_H
#define ENN_TOOLS_CLASS_PLOTS_H

#include "enn.h"
#include "metrics.h"

/* Writes dir/confusion_matrix.png (rows: true class, columns: predicted; each row as
 * fractions of its class) and dir/class_scores.png. names may be NULL. */
enn_status class_plots_write(const char *dir, const confusion *c, const char *const *names);

#endif
