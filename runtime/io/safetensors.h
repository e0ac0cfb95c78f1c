/* The safetensors format: an 8-byte little-endian header length, a JSON header mapping
 * each tensor name to {dtype, shape, data_offsets} (plus string metadata under
 * "__metadata__"), then the raw little-endian data. Checkpoints use it so that Python
 * (the safetensors package, or json + numpy) opens them directly. */
#ifndef ENN_IO_SAFETENSORS_H
#define ENN_IO_SAFETENSORS_H

#include <stdint.h>
#include "enn.h"

typedef enum enn_st_dtype {
    ENN_ST_F32,
    ENN_ST_F64,
    ENN_ST_F16,
    ENN_ST_I32,
    ENN_ST_I64,
    ENN_ST_U8,
    ENN_ST_U32,
} enn_st_dtype;

#define ENN_ST_MAX_RANK 8

typedef struct enn_st_tensor {
    const char *name;
    enn_st_dtype dtype;
    uint32_t rank;
    uint64_t shape[ENN_ST_MAX_RANK];
    const void *data;   /* bytes = product(shape) * dtype size */
} enn_st_tensor;

typedef struct enn_st_meta {
    const char *key, *value;
} enn_st_meta;

size_t enn_st_dtype_size(enn_st_dtype t);
const char *enn_st_dtype_name(enn_st_dtype t);
uint64_t enn_st_elements(const enn_st_tensor *t);

/* Writes atomically: a temporary file in the same directory, fsync, rename. On any
 * failure the file at `path` (if one existed) is untouched. */
enn_status enn_safetensors_write(const char *path, const enn_st_tensor *tensors, uint32_t count,
                                 const enn_st_meta *meta, uint32_t meta_count);

/* A file read whole and checked: every offset, shape and dtype is validated. */
typedef struct enn_safetensors enn_safetensors;
enn_status enn_safetensors_read(const char *path, enn_safetensors **out);
void enn_safetensors_free(enn_safetensors *st);
uint32_t enn_safetensors_count(const enn_safetensors *st);
const enn_st_tensor *enn_safetensors_at(const enn_safetensors *st, uint32_t i);
const enn_st_tensor *enn_safetensors_find(const enn_safetensors *st, const char *name);
/* NULL when the key is absent. */
const char *enn_safetensors_meta(const enn_safetensors *st, const char *key);
const char *enn_safetensors_path(const enn_safetensors *st);

#endif
