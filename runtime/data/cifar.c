/* CIFAR-10 binary batches: records of 1 label byte and 3072 pixel bytes (R plane, G
 * plane, B plane, each 32x32 row-major), no header. Read as rows: T = 32, d = 96. */
#include <stdlib.h>
#include <string.h>

#include "data/file.h"

enum { CIFAR_SIDE = 32, CIFAR_PLANE = 1024, CIFAR_RECORD = 1 + 3 * CIFAR_PLANE, CIFAR_CLASSES = 10 };

static enn_status check_batch(const char *path, const uint8_t *buf, size_t size)
{
    if (size == 0) return enn_error(ENN_ERROR_FORMAT, "%s: empty file (want CIFAR-10 records of %d bytes)", path, CIFAR_RECORD);
    /* The distributed archive itself, not yet extracted: a tar file has "ustar" at 257. */
    if (size >= 262 && memcmp(buf + 257, "ustar", 5) == 0)
        return enn_error(ENN_ERROR_FORMAT, "%s: wrong format: this is a tar archive; extract cifar-10-binary.tar.gz "
                         "and load data_batch_*.bin / test_batch.bin", path);
    /* Pickle protocol 2+ starts with 0x80 then the protocol number. */
    if (size >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5)
        return enn_error(ENN_ERROR_FORMAT, "%s: wrong format: this is a Python pickle (CIFAR-10's python version); "
                         "convert it to the binary version with tools/cifar10_to_binary.py", path);
    if (size % CIFAR_RECORD != 0 && size % (CIFAR_RECORD + 1) == 0)
        return enn_error(ENN_ERROR_FORMAT, "%s: wrong format: %zu bytes are %zu records of %d bytes, CIFAR-100's (a "
                         "coarse and a fine label byte); this loader reads CIFAR-10", path, size,
                         size / (CIFAR_RECORD + 1), CIFAR_RECORD + 1);
    if (size % CIFAR_RECORD != 0)
        return enn_error(ENN_ERROR_FORMAT, "%s: wrong size: %zu bytes is not a whole number of %d-byte CIFAR-10 records "
                         "(%zu records and %zu bytes over; truncated or not a CIFAR-10 batch)",
                         path, size, CIFAR_RECORD, size / CIFAR_RECORD, size % CIFAR_RECORD);
    for (size_t r = 0; r < size / CIFAR_RECORD; r++)
        if (buf[r * CIFAR_RECORD] >= CIFAR_CLASSES)
            return enn_error(ENN_ERROR_FORMAT, "%s: record %zu (byte offset %zu) has label %u, but CIFAR-10 labels are 0..9 "
                             "(a CIFAR-100 file, or not a CIFAR-10 batch)", path, r, r * CIFAR_RECORD,
                             buf[r * CIFAR_RECORD]);
    return ENN_OK;
}

enn_status enn_load_cifar10(const char *const *paths, uint32_t count, enn_dataset *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_load_cifar10: out is NULL");
    memset(out, 0, sizeof *out);
    if (!paths || count == 0) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_load_cifar10: no files given");
    enn_dataset ds = {.T = CIFAR_SIDE, .d = 3 * CIFAR_SIDE, .num_classes = CIFAR_CLASSES};
    for (uint32_t f = 0; f < count; f++) {
        uint8_t *buf;
        size_t size;
        enn_status s = enn_file_slurp(paths[f], &buf, &size, NULL);
        if (s == ENN_OK) s = check_batch(paths[f], buf, size);
        size_t m = size / CIFAR_RECORD, n = ds.n + m;
        float *x = NULL;
        uint32_t *labels = NULL;
        if (s == ENN_OK) {
            x = realloc(ds.x, n * 3 * CIFAR_PLANE * sizeof(float));
            if (x) ds.x = x;
            labels = x ? realloc(ds.labels, n * sizeof(uint32_t)) : NULL;
            if (labels) ds.labels = labels;
            if (!x || !labels) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory for %zu images", paths[f], n);
        }
        if (s != ENN_OK) {
            free(buf);
            enn_dataset_free(&ds);
            return s;
        }
        for (size_t r = 0; r < m; r++) {
            const uint8_t *rec = buf + r * CIFAR_RECORD;
            float *img = ds.x + (ds.n + r) * 3 * CIFAR_PLANE;
            ds.labels[ds.n + r] = rec[0];
            /* x[row, 3*col + channel]: each pixel's r, g, b side by side (Keras's HWC). */
            for (int ch = 0; ch < 3; ch++)
                for (int p = 0; p < CIFAR_PLANE; p++)
                    img[3 * p + ch] = rec[1 + ch * CIFAR_PLANE + p] / 255.0f;
        }
        ds.n = n;
        free(buf);
    }
    *out = ds;
    enn_error_clear();
    return ENN_OK;
}
