#include "ref_embedding.h"

void ref_embedding_forward(size_t rows, size_t dim, size_t vocab, const double *table, const uint32_t *ids,
                           double *out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < dim; c++) out[r * dim + c] = ids[r] < vocab ? table[ids[r] * dim + c] : 0;
}

void ref_embedding_backward(size_t rows, size_t dim, size_t vocab, const uint32_t *ids, const double *dout,
                            double *dtable)
{
    for (size_t r = 0; r < rows; r++)
        if (ids[r] < vocab)
            for (size_t c = 0; c < dim; c++) dtable[ids[r] * dim + c] += dout[r * dim + c];
}
