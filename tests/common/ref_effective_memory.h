/* Double-precision reference of E = M + alpha H (copies = B per sample, else 1). */
#ifndef ENN_TEST_REF_EFFECTIVE_MEMORY_H
#define ENN_TEST_REF_EFFECTIVE_MEMORY_H

#include <stddef.h>

void ref_effective_memory_forward(size_t copies, size_t nh, const double *M, const double *H, double alpha, double *E);
/* dM [nh], dH [copies*nh] overwritten. */
void ref_effective_memory_backward(size_t copies, size_t nh, const double *dE, double alpha, double *dM, double *dH);

#endif
