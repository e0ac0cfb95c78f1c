/* enn_array helpers: element sizes, names, counts, conversion to float. */
#include "data/array.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t enn_dtype_size(enn_dtype t)
{
    switch (t) {
    case ENN_DTYPE_F32: return 4;
    case ENN_DTYPE_F64: return 8;
    case ENN_DTYPE_I32: return 4;
    case ENN_DTYPE_I64: return 8;
    case ENN_DTYPE_U8: return 1;
    case ENN_DTYPE_U32: return 4;
    case ENN_DTYPE_ANY: break;
    }
    return 0;
}

const char *enn_dtype_name(enn_dtype t)
{
    switch (t) {
    case ENN_DTYPE_F32: return "<f4";
    case ENN_DTYPE_F64: return "<f8";
    case ENN_DTYPE_I32: return "<i4";
    case ENN_DTYPE_I64: return "<i8";
    case ENN_DTYPE_U8: return "|u1";
    case ENN_DTYPE_U32: return "<u4";
    case ENN_DTYPE_ANY: return "any";
    }
    return "unknown";
}

uint64_t enn_array_count(const enn_array *a)
{
    if (!a) return 0;
    uint64_t c = 1;
    for (uint32_t i = 0; i < a->rank; i++) c *= a->shape[i];
    return c;
}

void enn_array_free(enn_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int enn_dtype_is_integer(enn_dtype t)
{
    return t == ENN_DTYPE_I32 || t == ENN_DTYPE_I64 || t == ENN_DTYPE_U8 || t == ENN_DTYPE_U32;
}

double enn_array_get(const enn_array *a, size_t i)
{
    switch (a->dtype) {
    case ENN_DTYPE_F32: return ((const float *)a->data)[i];
    case ENN_DTYPE_F64: return ((const double *)a->data)[i];
    case ENN_DTYPE_I32: return ((const int32_t *)a->data)[i];
    case ENN_DTYPE_I64: return (double)((const int64_t *)a->data)[i];
    case ENN_DTYPE_U8: return ((const uint8_t *)a->data)[i];
    case ENN_DTYPE_U32: return ((const uint32_t *)a->data)[i];
    case ENN_DTYPE_ANY: break;
    }
    return 0.0;
}

enn_status enn_array_to_f32(enn_array *a, const char *path)
{
    if (a->dtype == ENN_DTYPE_F32) return ENN_OK;
    size_t n = (size_t)enn_array_count(a);
    float *f = malloc(n ? n * sizeof(float) : 1);
    if (!f) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory converting %zu values to float", path, n);
    for (size_t i = 0; i < n; i++) {
        double v = enn_array_get(a, i);
        /* Out-of-range doubles become infinities, as IEEE rounding would (a plain
         * conversion is undefined behaviour in C). */
        f[i] = v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
    }
    free(a->data);
    a->data = f;
    a->dtype = ENN_DTYPE_F32;
    return ENN_OK;
}

void enn_format_shape(const enn_array *a, char *buf, size_t cap)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, cap, "(");
    for (uint32_t i = 0; i < a->rank && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", i ? ", " : "", (unsigned long long)a->shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, a->rank == 1 ? ",)" : ")");
}
