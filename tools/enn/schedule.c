/* Early stopping, reduce-on-plateau and learning-rate schedules (see schedule.h). */
#include "schedule.h"

#include <math.h>

void early_stopping_init(early_stopping *e, uint32_t patience)
{
    *e = (early_stopping){.patience = patience, .best = INFINITY};
}

int early_stopping_update(early_stopping *e, uint32_t epoch, double loss, int *stop)
{
    int improved = loss < e->best; /* a NaN loss never improves */
    if (improved) {
        e->best = loss;
        e->best_epoch = epoch;
        e->wait = 0;
    } else {
        e->wait++;
    }
    *stop = e->wait >= e->patience;
    return improved;
}

void plateau_init(plateau *p, uint32_t patience, float factor, float min_lr)
{
    *p = (plateau){.patience = patience, .factor = factor, .min_lr = min_lr, .best = INFINITY};
}

float plateau_update(plateau *p, double loss, float lr)
{
    if (loss < p->best - PLATEAU_MIN_DELTA) {
        p->best = loss;
        p->wait = 0;
        return lr;
    }
    if (++p->wait < p->patience) return lr;
    p->wait = 0;
    if (lr <= p->min_lr) return lr;
    return fmaxf(lr * p->factor, p->min_lr);
}

float lr_schedule_at(const lr_schedule *s, uint64_t step)
{
    if (s->shape == LR_CONSTANT) return s->base;
    if (step < s->warmup) return (float)((double)s->base * (double)(step + 1) / (double)s->warmup);
    if (step >= s->total) return s->min_lr;
    double span = (double)(s->total - s->warmup), p = span > 0 ? (double)(step - s->warmup) / span : 1.0;
    const double pi = 3.14159265358979323846;
    double f = s->shape == LR_COSINE ? 0.5 * (1.0 + cos(pi * p)) : 1.0 - p;   /* 1 -> 0 */
    return (float)(s->min_lr + ((double)s->base - s->min_lr) * f);
}
