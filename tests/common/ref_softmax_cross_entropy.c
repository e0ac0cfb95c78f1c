#include "ref_softmax_cross_entropy.h"

#include <math.h>

static int counted(uint32_t label, size_t classes, uint32_t ignore) { return label != ignore && label < classes; }

static double row_lse(size_t classes, const double *x)
{
    double m = x[0];
    for (size_t v = 1; v < classes; v++) m = x[v] > m ? x[v] : m;
    double s = 0;
    for (size_t v = 0; v < classes; v++) s += exp(x[v] - m);
    return m + log(s);
}

ref_xent_result ref_softmax_cross_entropy_forward(size_t rows, size_t classes, uint32_t ignore, const double *logits,
                                                  const uint32_t *labels, double *loss, uint32_t *pred)
{
    ref_xent_result res = {0};
    for (size_t r = 0; r < rows; r++) {
        const double *x = logits + r * classes;
        uint32_t arg = 0;
        for (size_t v = 1; v < classes; v++)
            if (x[v] > x[arg]) arg = (uint32_t)v;
        if (pred) pred[r] = arg;
        double l = 0;
        if (counted(labels[r], classes, ignore)) {
            l = row_lse(classes, x) - x[labels[r]];
            res.sum_loss += l;
            res.count++;
            res.correct += arg == labels[r];
        } else if (labels[r] != ignore) {
            res.invalid++;
        }
        if (loss) loss[r] = l;
    }
    res.mean_loss = res.count ? res.sum_loss / res.count : 0;
    return res;
}

void ref_softmax_cross_entropy_backward(size_t rows, size_t classes, uint32_t ignore, const double *logits,
                                        const uint32_t *labels, double scale, double *dlogits)
{
    uint32_t count = 0;
    for (size_t r = 0; r < rows; r++) count += counted(labels[r], classes, ignore);
    for (size_t r = 0; r < rows; r++) {
        const double *x = logits + r * classes;
        double *g = dlogits + r * classes;
        if (!count || !counted(labels[r], classes, ignore)) {
            for (size_t v = 0; v < classes; v++) g[v] = 0;
            continue;
        }
        double lse = row_lse(classes, x);
        for (size_t v = 0; v < classes; v++) g[v] = scale * (exp(x[v] - lse) - (v == labels[r])) / count;
    }
}
