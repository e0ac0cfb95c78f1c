/* Early stopping and reduce-on-plateau (see schedule.h). */
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
