#include "ref_adam.h"

#include <math.h>

void ref_adam_update(size_t tensors, const ref_adam_tensor *t, const ref_adam_hparams *hp, double *p,
                     const double *g, double *m, double *v)
{
    double global = 0;
    for (size_t k = 0; k < tensors; k++)
        for (size_t i = 0; i < t[k].count; i++) global += g[t[k].offset + i] * g[t[k].offset + i];
    global = sqrt(global);
    double step = (double)hp->step;
    double alpha = hp->lr * sqrt(1 - pow(hp->beta2, step)) / (1 - pow(hp->beta1, step));
    for (size_t k = 0; k < tensors; k++) {
        double norm = 0;
        for (size_t i = 0; i < t[k].count; i++) norm += g[t[k].offset + i] * g[t[k].offset + i];
        norm = sqrt(norm);
        double scale = 1;
        if (hp->clip == 1) scale = hp->clipnorm / fmax(norm, hp->clipnorm);
        if (hp->clip == 2) scale = hp->clipnorm / fmax(global, hp->clipnorm);
        for (size_t i = 0; i < t[k].count; i++) {
            size_t at = t[k].offset + i;
            double gi = g[at] * scale;
            if (t[k].decay) p[at] -= p[at] * hp->lr * hp->weight_decay;
            m[at] += (gi - m[at]) * (1 - hp->beta1);
            v[at] += (gi * gi - v[at]) * (1 - hp->beta2);
            p[at] -= alpha * m[at] / (sqrt(v[at]) + hp->epsilon);
        }
    }
}
