#include "models/init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ops/philox.h"

/* Streams for parameter initialisation are kept apart from noise and dropout streams. */
#define INIT_STREAM_BASE 0x1000000ull

/* A truncated normal: draws past two standard deviations are redrawn, consuming the next
 * indices of the same stream. As Keras's VarianceScaling, the normal's std is divided by
 * 0.8796 (the std of a unit normal cut at +-2) so that the values end with std
 * sqrt(2 / fan_in). */
static void he_normal(float *w, uint64_t count, uint32_t fan_in, uint64_t seed, uint64_t stream)
{
    double std = sqrt(2.0 / fan_in) / 0.87962566103423978;
    uint32_t index = 0;
    for (uint64_t i = 0; i < count; i++) {
        float z;
        do z = enn_philox_normal(seed, stream, index++);
        while (fabsf(z) > 2.0f);
        w[i] = (float)(z * std);
    }
}

static void uniform(float *w, uint64_t count, double limit, uint64_t seed, uint64_t stream)
{
    for (uint64_t i = 0; i < count; i++)
        w[i] = (float)((2.0 * enn_philox_uniform(seed, stream, (uint32_t)i) - 1.0) * limit);
}

/* Keras makes a [rows, cols] matrix orthogonal by QR of a normal matrix; this
 * orthonormalises the rows (or the columns, whichever are fewer) of a normal matrix with
 * modified Gram-Schmidt in double, which spans the same kind of matrix. */
static enn_status orthogonal(float *w, uint32_t rows, uint32_t cols, uint64_t seed, uint64_t stream)
{
    int by_rows = rows <= cols;
    uint32_t vecs = by_rows ? rows : cols, len = by_rows ? cols : rows;
    double *q = malloc((size_t)vecs * len * sizeof *q);
    if (!q) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "orthogonal initialisation");
    for (uint64_t i = 0; i < (uint64_t)vecs * len; i++) q[i] = enn_philox_normal(seed, stream, (uint32_t)i);
    for (uint32_t v = 0; v < vecs; v++) {
        double *x = q + (size_t)v * len;
        for (uint32_t u = 0; u < v; u++) {
            const double *y = q + (size_t)u * len;
            double dot = 0;
            for (uint32_t k = 0; k < len; k++) dot += x[k] * y[k];
            for (uint32_t k = 0; k < len; k++) x[k] -= dot * y[k];
        }
        double norm = 0;
        for (uint32_t k = 0; k < len; k++) norm += x[k] * x[k];
        norm = sqrt(norm);
        for (uint32_t k = 0; k < len; k++) x[k] = norm > 0 ? x[k] / norm : 0;
    }
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++)
            w[(size_t)r * cols + c] = (float)(by_rows ? q[(size_t)r * len + c] : q[(size_t)c * len + r]);
    free(q);
    return ENN_OK;
}

enn_status enn_init_parameters(const enn_layout *l, uint64_t seed, float *params)
{
    memset(params, 0, l->bytes);
    for (uint32_t i = 0; i < l->count; i++) {
        const enn_tensor_info *t = &l->tensors[i];
        float *w = (float *)((char *)params + t->offset);
        uint32_t fan_in = t->shape[0], fan_out = t->rank == 2 ? t->shape[1] : 1;
        uint64_t stream = INIT_STREAM_BASE + i;
        switch (t->init) {
        case ENN_INIT_ZEROS: break;
        case ENN_INIT_ONES:
            for (uint64_t k = 0; k < t->count; k++) w[k] = 1.0f;
            break;
        case ENN_INIT_HE_NORMAL: he_normal(w, t->count, fan_in, seed, stream); break;
        case ENN_INIT_GLOROT_UNIFORM:
            /* A vector (Dense to one unit) has fan_in = its length and fan_out = 1. */
            uniform(w, t->count, sqrt(6.0 / (fan_in + fan_out)), seed, stream);
            break;
        case ENN_INIT_ORTHOGONAL:
            /* As Keras: the whole [u, gates*u] kernel gets orthonormal rows. */
            ENN_TRY(orthogonal(w, fan_in, fan_out, seed, stream));
            break;
        case ENN_INIT_UNIFORM_EMBEDDING: uniform(w, t->count, 0.05, seed, stream); break;
        case ENN_INIT_LSTM_BIAS:
            /* Keras's unit_forget_bias: gates are packed [i | f | c | o]. */
            for (uint64_t k = t->count / 4; k < t->count / 2; k++) w[k] = 1.0f;
            break;
        }
    }
    return ENN_OK;
}
