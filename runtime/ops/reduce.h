/* Sums over an axis, and squared L2 norms of whole buffers or of each tensor of a flat
 * parameter buffer, computed on the device in a fixed order (bitwise repeatable) and
 * left on the device (the optimiser reads them there). Kernels: shaders/reduce.comp. */
#ifndef ENN_OPS_REDUCE_H
#define ENN_OPS_REDUCE_H

#include "core/recorder.h"
#include "ops/view.h"

/* out[cols] = alpha * sum over rows of x[rows, cols] + beta * out  (bias gradients: db = sum_rows dY) */
enn_status enn_sum_rows(enn_recorder *rec, uint32_t rows, uint32_t cols, enn_view x, float alpha, float beta,
                        enn_view out);
/* The same under the dispatch name `name` (what a profile reports it as). */
enn_status enn_sum_rows_named(enn_recorder *rec, const char *name, uint32_t rows, uint32_t cols, enn_view x,
                              float alpha, float beta, enn_view out);
/* out[rows] = alpha * sum over cols of x[rows, cols] + beta * out */
enn_status enn_sum_cols(enn_recorder *rec, uint32_t rows, uint32_t cols, enn_view x, float alpha, float beta,
                        enn_view out);

/* ---- parameter tables: the tensors of one flat float buffer, for norms and the optimiser */

#define ENN_PARAM_DECAY 1u   /* flag: AdamW's weight decay applies to this tensor */

typedef struct enn_param_range {
    uint32_t offset;   /* first float of the tensor in the flat buffer */
    uint32_t count;    /* floats */
    uint32_t flags;    /* ENN_PARAM_* */
} enn_param_range;

/* Device-side description of the tensors, split into chunks of chunk_elems floats (one
 * workgroup each), with the workspace of the norm passes. */
typedef struct enn_param_table {
    enn_buffer *table;      /* uint32 [tensor_count][4]: offset, count, first chunk, flags */
    enn_buffer *partials;   /* float [chunk_count]: sum of squares per chunk */
    enn_buffer *sumsq;      /* float [tensor_count]: squared norm per tensor (enn_param_table_sumsq) */
    uint32_t tensor_count;
    uint32_t chunk_count;
    uint32_t chunk_elems;
    uint64_t extent;        /* floats the flat buffer must hold: max(offset + count) */
    int offsets_vec4;       /* every tensor's offset is a multiple of 4 (vec4 kernels) */
    uint32_t *host;         /* the table's words on the host, for splitting it into windows */
} enn_param_table;

#define ENN_PARAM_CHUNK 4096u

/* Chunks [chunk0, chunk0 + chunks) of a table whose floats all lie in one binding of
 * `bytes` bytes that starts `elem_base` floats into the flat buffer (a multiple of the
 * device's storage offset alignment). A flat buffer larger than one binding may be (the
 * 188,590-word model's 195 MB against lavapipe's 128 MiB) is bound a window at a time;
 * each chunk is computed exactly as in one dispatch, so results are bit-identical. */
typedef struct enn_param_window {
    uint32_t chunk0, chunks;
    uint32_t elem_base;
    uint64_t bytes;
} enn_param_window;

/* The window starting at chunk0 (< table->chunk_count) on this context: the whole table
 * when it fits one binding, else as many chunks as fit. */
enn_status enn_param_table_window(const enn_context *ctx, const enn_param_table *table, uint32_t chunk0,
                                  enn_param_window *out);

/* Builds and uploads the table. Ranges must be non-empty and must not overlap. */
enn_status enn_param_table_create(enn_context *ctx, const enn_param_range *ranges, uint32_t count,
                                  enn_param_table **out);
void enn_param_table_destroy(enn_context *ctx, enn_param_table *table);

/* out[k] = ||x restricted to tensor k||^2 (or the norm itself with take_sqrt), for
 * every tensor of the table; out = table->sumsq is what the optimiser reads. */
enn_status enn_param_table_sumsq(enn_recorder *rec, const enn_param_table *table, enn_view x, enn_view out,
                                 int take_sqrt);

/* out[0] = ||x[n]||_2, the global L2 norm of a flat buffer, in two passes through a
 * workspace of enn_l2_norm_workspace_bytes(n). */
uint64_t enn_l2_norm_workspace_bytes(uint64_t n);
enn_status enn_l2_norm(enn_recorder *rec, uint64_t n, enn_view x, enn_view workspace, enn_view out);

#endif
