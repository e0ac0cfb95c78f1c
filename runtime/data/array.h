/* Internal helpers shared by the loaders for enn_array. */
#ifndef ENN_DATA_ARRAY_H
#define ENN_DATA_ARRAY_H

#include <stdint.h>
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

/* Images [n, rows, cols] of unsigned bytes and their labels [n] as a classification data
 * set: x[n, T = rows, d = cols] = pixel / 255 (MNIST's IDX files, Keras's mnist.npz). The
 * names go into the messages. */
enn_status enn_dataset_from_images(const enn_array *images, const enn_array *labels, const char *images_name,
                                   const char *labels_name, enn_dataset *out);

/* The arrays of a .npy file held in memory (read from a file or a .npz member, named
 * `name` in messages): takes `buf` (malloc'ed) whatever the outcome. `want` as in
 * enn_npy_read. */
enn_status enn_npy_from_bytes(const char *name, uint8_t *buf, size_t size, enn_dtype want, enn_array *out);

#endif
