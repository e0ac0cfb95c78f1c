#include "ref_dropout.h"

void ref_dropout(size_t n, const double *x, const unsigned char *keep, double p, double *y)
{
    for (size_t i = 0; i < n; i++) y[i] = keep[i] ? x[i] / (1 - p) : 0;
}
