#include "ref_elementwise.h"

#include <math.h>

double ref_activation(int act, double x)
{
    switch (act) {
    case 1: return x > 0 ? x : 0;
    case 2: return tanh(x);
    case 3: return 1 / (1 + exp(-x));
    default: return x;
    }
}

double ref_activation_derivative_from_output(int act, double y)
{
    switch (act) {
    case 1: return y > 0 ? 1 : 0;
    case 2: return 1 - y * y;
    case 3: return y * (1 - y);
    default: return 1;
    }
}

void ref_activation_forward(int act, size_t n, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++) y[i] = ref_activation(act, x[i]);
}

void ref_activation_backward(int act, size_t n, const double *y, const double *dy, double beta, double *dx)
{
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * ref_activation_derivative_from_output(act, y[i]) + beta * dx[i];
}

void ref_concat_forward(size_t rows, size_t parts, const uint32_t *cols, const double *const *in, double *out)
{
    size_t total = 0;
    for (size_t p = 0; p < parts; p++) total += cols[p];
    for (size_t r = 0; r < rows; r++)
        for (size_t p = 0, at = 0; p < parts; at += cols[p], p++)
            for (size_t c = 0; c < cols[p]; c++) out[r * total + at + c] = in[p][r * cols[p] + c];
}

void ref_concat_backward(size_t rows, size_t parts, const uint32_t *cols, const double *dout, double beta,
                         double *const *din)
{
    size_t total = 0;
    for (size_t p = 0; p < parts; p++) total += cols[p];
    for (size_t r = 0; r < rows; r++)
        for (size_t p = 0, at = 0; p < parts; at += cols[p], p++)
            for (size_t c = 0; c < cols[p]; c++)
                din[p][r * cols[p] + c] = dout[r * total + at + c] + beta * din[p][r * cols[p] + c];
}

void ref_sum_rows(size_t rows, size_t cols, const double *x, double alpha, double beta, double *out)
{
    for (size_t c = 0; c < cols; c++) {
        double s = 0;
        for (size_t r = 0; r < rows; r++) s += x[r * cols + c];
        out[c] = alpha * s + beta * out[c];
    }
}

void ref_sum_cols(size_t rows, size_t cols, const double *x, double alpha, double beta, double *out)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t c = 0; c < cols; c++) s += x[r * cols + c];
        out[r] = alpha * s + beta * out[r];
    }
}

double ref_sumsq(size_t n, const double *x)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}
