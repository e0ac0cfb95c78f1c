/* A dataset from .npy arrays: x [n, T, d] and optional labels [n] or targets [n, k]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/array.h"

/* The first element of v[0..n) that is NaN or infinite, or n: such values would train
 * a model into NaN parameters (the CSV reader refuses them field by field). */
static size_t first_non_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return n;
}

enn_status enn_load_npy_pair(const char *x_path, const char *y_path, enn_dataset *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_load_npy_pair: out is NULL");
    memset(out, 0, sizeof *out);
    enn_array x = {0}, y = {0};
    ENN_TRY(enn_npy_read(x_path, ENN_DTYPE_F32, &x));
    enn_status s = ENN_OK;
    char shape[512];
    if (x.rank != 3 || x.shape[1] > UINT32_MAX || x.shape[2] > UINT32_MAX) {
        enn_format_shape(&x, shape, sizeof shape);
        s = enn_error(ENN_ERROR_FORMAT, "%s: wrong shape %s: features must have shape (n, T, d)%s", x_path, shape,
                      x.rank == 2 ? "; reshape (n, T) to (n, T, 1) or (n, d) to (n, 1, d)" : "");
        goto done;
    }
    size_t n = (size_t)x.shape[0];
    if (n && (!x.shape[1] || !x.shape[2])) {
        enn_format_shape(&x, shape, sizeof shape);
        s = enn_error(ENN_ERROR_FORMAT, "%s: shape %s has %s", x_path, shape, !x.shape[1] ? "no steps (T = 0)"
                                                                                     : "no features (d = 0)");
        goto done;
    }
    size_t nx = n * (size_t)x.shape[1] * (size_t)x.shape[2], bad = first_non_finite(x.data, nx);
    if (bad < nx) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: element %zu (sample %zu, step %zu, feature %zu) is %g: features must be "
                      "finite numbers", x_path, bad, bad / ((size_t)x.shape[1] * x.shape[2]),
                      bad / (size_t)x.shape[2] % (size_t)x.shape[1], bad % (size_t)x.shape[2], ((float *)x.data)[bad]);
        goto done;
    }
    if (y_path) {
        s = enn_npy_read(y_path, ENN_DTYPE_ANY, &y);
        if (s != ENN_OK) goto done;
        if (y.rank < 1 || y.rank > 2 || y.shape[0] != n || (enn_dtype_is_integer(y.dtype) && y.rank != 1)) {
            enn_format_shape(&y, shape, sizeof shape);
            s = enn_error(ENN_ERROR_FORMAT, "%s: wrong shape %s of %s: want (%zu,) class labels or (%zu, k) targets for the "
                          "%zu samples of %s", y_path, shape, enn_dtype_name(y.dtype), n, n, n, x_path);
            goto done;
        }
        if (enn_dtype_is_integer(y.dtype)) {
            out->labels = malloc(n ? n * sizeof(uint32_t) : 1);
            if (!out->labels) {
                s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", y_path);
                goto done;
            }
            uint32_t max_label = 0;
            for (size_t i = 0; i < n; i++) {
                double v = enn_array_get(&y, i);
                if (v < 0 || v >= (double)ENN_MAX_DIMENSION) {
                    s = enn_error(ENN_ERROR_FORMAT, "%s: label %zu is %.0f, not a class id (0 .. %u)", y_path, i, v,
                                  ENN_MAX_DIMENSION - 1);
                    goto done;
                }
                out->labels[i] = (uint32_t)v;
                if (out->labels[i] > max_label) max_label = out->labels[i];
            }
            out->num_classes = n ? max_label + 1 : 0;
        } else {
            s = enn_array_to_f32(&y, y_path);
            if (s != ENN_OK) goto done;
            out->k = y.rank == 2 ? (uint32_t)y.shape[1] : 1;
            size_t ny = n * out->k, bad_y = first_non_finite(y.data, ny);
            if (bad_y < ny) {
                s = enn_error(ENN_ERROR_FORMAT, "%s: element %zu (sample %zu) is %g: targets must be finite numbers",
                              y_path, bad_y, bad_y / out->k, ((float *)y.data)[bad_y]);
                goto done;
            }
            out->y = y.data;
            y.data = NULL;
        }
    }
    out->n = n;
    out->T = (uint32_t)x.shape[1];
    out->d = (uint32_t)x.shape[2];
    out->x = x.data;
    x.data = NULL;
    enn_error_clear();
done:
    if (s != ENN_OK) enn_dataset_free(out);
    enn_array_free(&x);
    enn_array_free(&y);
    return s;
}
