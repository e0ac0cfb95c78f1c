#include "ref_gradcheck.h"

#include <math.h>
#include <stdlib.h>

void ref_fd_gradient(ref_forward_fn f, void *user, double *x, size_t nx, size_t ny, const double *w, double h,
                     double *grad)
{
    double *y = malloc(ny * sizeof *y);
    for (size_t i = 0; i < nx; i++) {
        double x0 = x[i], step = h * fmax(fabs(x0), 1.0);
        double lp = 0, lm = 0;
        x[i] = x0 + step;
        f(user, x, y);
        for (size_t j = 0; j < ny; j++) lp += w[j] * y[j];
        x[i] = x0 - step;
        f(user, x, y);
        for (size_t j = 0; j < ny; j++) lm += w[j] * y[j];
        x[i] = x0;
        grad[i] = (lp - lm) / (2 * step);
    }
    free(y);
}
