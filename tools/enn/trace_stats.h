/* Summary statistics of a Hebbian trace H, as the reference package's HebbianTraceMonitor
 * logs them per epoch. Plain C with no dependencies, so the tests compile it directly. */
#ifndef ENN_TOOLS_TRACE_STATS_H
#define ENN_TOOLS_TRACE_STATS_H

#include <stddef.h>

/* |H| below this counts as zero for the sparsity (compared in float: 0.01f itself is not). */
#define TRACE_SPARSITY_THRESHOLD 0.01

typedef struct trace_stats {
    double mean_abs; /* mean of |H| */
    double max, min; /* of H (signed) */
    double std;      /* population standard deviation of H (divides by n, like numpy) */
    double sparsity; /* fraction of entries with |H| < 0.01 */
} trace_stats;

/* Statistics of n >= 1 floats, accumulated in double. n = 0 gives all zeros. */
trace_stats trace_stats_compute(const float *H, size_t n);

#endif
