#include "ref_effective_memory.h"

void ref_effective_memory_forward(size_t copies, size_t nh, const double *M, const double *H, double alpha, double *E)
{
    for (size_t c = 0; c < copies; c++)
        for (size_t i = 0; i < nh; i++) E[c * nh + i] = M[i] + alpha * H[c * nh + i];
}

void ref_effective_memory_backward(size_t copies, size_t nh, const double *dE, double alpha, double *dM, double *dH)
{
    for (size_t i = 0; i < nh; i++) dM[i] = 0;
    for (size_t c = 0; c < copies; c++)
        for (size_t i = 0; i < nh; i++) {
            dM[i] += dE[c * nh + i];
            dH[c * nh + i] = alpha * dE[c * nh + i];
        }
}
