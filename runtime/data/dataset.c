/* Datasets in host memory: freeing, seeded shuffles, the validation split, batches. */
#include <stdlib.h>
#include <string.h>

#include "data/file.h"

void enn_dataset_free(enn_dataset *ds)
{
    if (!ds) return;
    free(ds->x);
    free(ds->labels);
    free(ds->y);
    free(ds->tokens);
    free(ds->targets);
    memset(ds, 0, sizeof *ds);
}

/* Fisher-Yates from the top, j uniform in [0, i] (rejection sampling removes the
 * modulo bias, so the permutation is exactly uniform for any n). */
void enn_permutation(size_t *perm, size_t n, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        uint64_t bound = (uint64_t)i, limit = UINT64_MAX - UINT64_MAX % bound, r;
        do r = enn_splitmix64(&state);
        while (r >= limit);
        size_t j = (size_t)(r % bound);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* Bytes per sample of each array, in the order x, labels, y, tokens, targets. */
typedef struct sample_layout {
    void **arrays[5];
    size_t bytes[5];
} sample_layout;

static sample_layout layout_of(enn_dataset *ds)
{
    sample_layout l = {
        {(void **)&ds->x, (void **)&ds->labels, (void **)&ds->y, (void **)&ds->tokens, (void **)&ds->targets},
        {(size_t)ds->T * ds->d * sizeof(float), sizeof(uint32_t), (size_t)ds->k * sizeof(float),
         (size_t)ds->T * sizeof(uint32_t), (size_t)ds->T * sizeof(uint32_t)},
    };
    return l;
}

static enn_status check_dataset(const enn_dataset *ds, const char *fn)
{
    if (!ds) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: dataset is NULL", fn);
    if (ds->n && !ds->x && !ds->labels && !ds->y && !ds->tokens && !ds->targets)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: dataset has %zu samples but no arrays", fn, ds->n);
    return ENN_OK;
}

/* Copies samples idx[0..count) (idx NULL: first..first+count) of src into fresh arrays. */
static enn_status gather_new(const enn_dataset *src, const size_t *idx, size_t first, size_t count, enn_dataset *dst)
{
    enn_dataset tmp = *src;
    tmp.n = count;
    tmp.x = NULL, tmp.labels = NULL, tmp.y = NULL, tmp.tokens = NULL, tmp.targets = NULL;
    sample_layout from = layout_of((enn_dataset *)src), to = layout_of(&tmp);
    for (int a = 0; a < 5; a++) {
        const uint8_t *s = *from.arrays[a];
        if (!s) continue;
        size_t b = from.bytes[a];
        size_t total = count * b;
        uint8_t *d = malloc(total ? total : 1);
        if (!d) {
            enn_dataset_free(&tmp);
            return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory copying %zu samples", count);
        }
        for (size_t i = 0; i < count; i++) memcpy(d + i * b, s + (idx ? idx[i] : first + i) * b, b);
        *to.arrays[a] = d;
    }
    *dst = tmp;
    return ENN_OK;
}

enn_status enn_dataset_shuffle(enn_dataset *ds, uint64_t seed)
{
    ENN_TRY(check_dataset(ds, "enn_dataset_shuffle"));
    size_t *perm = malloc(ds->n ? ds->n * sizeof(size_t) : 1);
    if (!perm) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "enn_dataset_shuffle: out of host memory");
    enn_permutation(perm, ds->n, seed);
    enn_dataset shuffled;
    enn_status s = gather_new(ds, perm, 0, ds->n, &shuffled);
    free(perm);
    if (s != ENN_OK) return s;
    enn_dataset_free(ds);
    *ds = shuffled;
    return ENN_OK;
}

enn_status enn_dataset_slice(const enn_dataset *ds, size_t first, size_t count, enn_dataset *out)
{
    if (out) memset(out, 0, sizeof *out);
    ENN_TRY(check_dataset(ds, "enn_dataset_slice"));
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_dataset_slice: out is NULL");
    if (first > ds->n || count > ds->n - first)
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "enn_dataset_slice: samples [%zu, %zu+%zu) of a dataset of %zu", first,
                         first, count, ds->n);
    return gather_new(ds, NULL, first, count, out);
}

enn_status enn_dataset_split(enn_dataset *ds, double fraction, enn_dataset *val)
{
    if (val && val == ds)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_dataset_split: val must be another dataset than ds");
    if (val) memset(val, 0, sizeof *val);
    ENN_TRY(check_dataset(ds, "enn_dataset_split"));
    if (!val) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_dataset_split: val is NULL");
    if (!(fraction >= 0.0 && fraction < 1.0))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "validation fraction %g is not in [0, 1)", fraction);
    size_t keep = (size_t)((double)ds->n * (1.0 - fraction)); /* Keras: floor(n * (1 - split)) */
    if (keep > ds->n) keep = ds->n;
    if (fraction > 0.0 && (keep == 0 || keep == ds->n))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT,
                         "validation fraction %g of %zu samples leaves %zu for training and %zu for validation", fraction,
                         ds->n, keep, ds->n - keep);
    enn_dataset head, tail;
    ENN_TRY(gather_new(ds, NULL, 0, keep, &head));
    enn_status s = gather_new(ds, NULL, keep, ds->n - keep, &tail);
    if (s != ENN_OK) {
        enn_dataset_free(&head);
        return s;
    }
    enn_dataset_free(ds);
    *ds = head;
    *val = tail;
    return ENN_OK;
}

size_t enn_batch_count(size_t n, size_t batch, int drop_last)
{
    if (batch == 0) return 0;
    return drop_last ? n / batch : (n + batch - 1) / batch;
}

enn_status enn_dataset_gather(const enn_dataset *ds, const size_t *order, size_t first, size_t count, int time_major,
                              float *x, uint32_t *labels, float *y, uint32_t *tokens, uint32_t *targets)
{
    ENN_TRY(check_dataset(ds, "enn_dataset_gather"));
    if (first > ds->n || count > ds->n - first)
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "enn_dataset_gather: positions [%zu, %zu+%zu) of an order of %zu",
                         first, first, count, ds->n);
    struct { const void *src; void *dst; size_t elem; } want[] = {
        {ds->x, x, 0}, {ds->labels, labels, 0}, {ds->y, y, 0}, {ds->tokens, tokens, 0}, {ds->targets, targets, 0},
    };
    static const char *names[] = {"x", "labels", "y", "tokens", "targets"};
    for (int a = 0; a < 5; a++)
        if (want[a].dst && !want[a].src)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_dataset_gather: the dataset has no %s", names[a]);
    size_t T = ds->T, d = ds->d, k = ds->k;
    for (size_t b = 0; b < count; b++) {
        size_t i = order ? order[first + b] : first + b;
        if (i >= ds->n)
            return enn_error(ENN_ERROR_OUT_OF_RANGE, "enn_dataset_gather: order[%zu] = %zu, past the %zu samples",
                             first + b, i, ds->n);
        if (labels) labels[b] = ds->labels[i];
        if (y) memcpy(y + b * k, ds->y + i * k, k * sizeof(float));
        for (size_t t = 0; t < T; t++) {
            size_t row = time_major ? t * count + b : b * T + t; /* destination step index */
            if (x) memcpy(x + row * d, ds->x + (i * T + t) * d, d * sizeof(float));
            if (tokens) tokens[row] = ds->tokens[i * T + t];
            if (targets) targets[row] = ds->targets[i * T + t];
        }
    }
    return ENN_OK;
}
