/* Internal helpers shared by the loaders for enn_array. */
#ifndef ENN_DATA_ARRAY_H
#define ENN_DATA_ARRAY_H

#include <stdio.h>

#include "core/error.h"
#include "enn_data.h"

int enn_dtype_is_integer(enn_dtype t);
/* Element i as a double, whatever the dtype. */
double enn_array_get(const enn_array *a, size_t i);
/* Converts the array to float in place; `path` names it in messages. */
enn_status enn_array_to_f32(enn_array *a, const char *path);
/* numpy's way of printing a shape: "(60000, 28, 28)", "(5,)", "()". */
void enn_format_shape(const enn_array *a, char *buf, size_t cap);

#endif
