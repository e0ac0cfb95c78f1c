#include "trace_stats.h"

#include <math.h>

trace_stats trace_stats_compute(const float *H, size_t n)
{
    trace_stats s = {0};
    if (!H || n == 0) return s;
    double sum = 0.0, sum_abs = 0.0;
    size_t small = 0;
    s.max = s.min = H[0];
    for (size_t i = 0; i < n; i++) {
        double v = H[i];
        sum += v;
        sum_abs += fabs(v);
        small += fabsf(H[i]) < (float)TRACE_SPARSITY_THRESHOLD; /* in float, as numpy compares a float32 trace */
        if (v > s.max) s.max = v;
        if (v < s.min) s.min = v;
    }
    double mean = sum / n, var = 0.0;
    /* two passes: the variance of values near a large mean loses nothing to cancellation */
    for (size_t i = 0; i < n; i++) var += (H[i] - mean) * (H[i] - mean);
    s.mean_abs = sum_abs / n;
    s.std = sqrt(var / n);
    s.sparsity = (double)small / n;
    return s;
}
