/* Double-precision reference for runtime/ops/embedding.h. */
#ifndef ENN_TEST_REF_EMBEDDING_H
#define ENN_TEST_REF_EMBEDDING_H

#include <stddef.h>
#include <stdint.h>

/* out[r, :] = table[ids[r], :] (zeros for ids >= vocab) */
void ref_embedding_forward(size_t rows, size_t dim, size_t vocab, const double *table, const uint32_t *ids,
                           double *out);
/* dtable[ids[r], :] += dout[r, :] for ids < vocab */
void ref_embedding_backward(size_t rows, size_t dim, size_t vocab, const uint32_t *ids, const double *dout,
                            double *dtable);

#endif
