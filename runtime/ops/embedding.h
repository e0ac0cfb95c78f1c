/* Embedding lookup and its backward. Kernels: shaders/embedding.comp.
 *
 * The backward is deterministic without atomics: a first pass links every position to
 * the next one with the same id and marks each id's first position; a second pass lets
 * that first position sum the id's rows of d out in position order and add the sum to
 * the table's gradient. Each d table entry has one writer, so repeated ids in a batch
 * are summed correctly and results are bitwise repeatable. */
#ifndef ENN_OPS_EMBEDDING_H
#define ENN_OPS_EMBEDDING_H

#include "core/recorder.h"
#include "ops/view.h"

/* table [vocab, dim], ids [rows] uint32 -> out [rows, dim]; an id >= vocab gives a zero row. */
enn_status enn_embedding_forward(enn_recorder *rec, uint32_t rows, uint32_t dim, uint32_t vocab, enn_view table,
                                 enn_view ids, enn_view out);
/* Bytes of device workspace the backward needs for `rows` ids. */
uint64_t enn_embedding_backward_workspace_bytes(uint32_t rows);
/* dtable [vocab, dim] += scatter-add of dout [rows, dim] by ids [rows] (ids >= vocab are
 * skipped). Rows of dtable whose id does not occur are not touched. */
enn_status enn_embedding_backward(enn_recorder *rec, uint32_t rows, uint32_t dim, uint32_t vocab, enn_view ids,
                                  enn_view dout, enn_view workspace, enn_view dtable);

#endif
