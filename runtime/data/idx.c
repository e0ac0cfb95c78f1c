/* IDX files (MNIST, Fashion-MNIST): 00 00 <type> <rank>, rank big-endian uint32 dims,
 * then the data in big-endian row-major order. Plain or gzip. */
#include <stdlib.h>
#include <string.h>

#include "data/array.h"
#include "data/file.h"

static const char *idx_type_name(uint8_t code)
{
    switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    }
    return NULL;
}

/* "60000 images of 28x28", "60000 labels" or "dims 3x4x5x6 of float": what the header says. */
static void describe(const enn_array *a, uint8_t code, char *buf, size_t cap)
{
    if (a->rank == 3 && code == 0x08)
        snprintf(buf, cap, "%llu images of %llux%llu", (unsigned long long)a->shape[0],
                 (unsigned long long)a->shape[1], (unsigned long long)a->shape[2]);
    else if (a->rank == 1 && code == 0x08)
        snprintf(buf, cap, "%llu labels", (unsigned long long)a->shape[0]);
    else {
        size_t used = (size_t)snprintf(buf, cap, "dims ");
        for (uint32_t i = 0; i < a->rank && used < cap; i++)
            used += (size_t)snprintf(buf + used, cap - used, "%s%llu", i ? "x" : "", (unsigned long long)a->shape[i]);
        if (used < cap) snprintf(buf + used, cap - used, " of %s", idx_type_name(code));
    }
}

/* enn_idx_read, or with want_rank > 0 only a file of that many dimensions: a label file
 * given for images (or the reverse) is named as such from its magic, before its data
 * is sized by dimensions that are not there. */
static enn_status idx_read(const char *path, uint32_t want_rank, enn_array *out);

enn_status enn_idx_read(const char *path, enn_array *out) { return idx_read(path, 0, out); }

static enn_status idx_read(const char *path, uint32_t want_rank, enn_array *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t size;
    int gz;
    ENN_TRY(enn_file_slurp(path, &buf, &size, &gz));
    enn_status s = ENN_OK;
    enn_array a = {0};
    const char *kind = gz ? "the decompressed file" : "the file";
    if (size == 0) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: empty file (want an IDX file)", path);
        goto fail;
    }
    if (size < 4) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: truncated: %s holds %zu bytes, less than the 4-byte IDX magic", path, kind, size);
        goto fail;
    }
    uint8_t code = buf[2], rank = buf[3];
    if (buf[0] != 0 || buf[1] != 0 || !idx_type_name(code) || rank == 0) {
        s = enn_error(ENN_ERROR_FORMAT,
                      "%s: not an IDX file: wrong magic %02x %02x %02x %02x (want 00 00 08 01 for labels, "
                      "00 00 08 03 for images)", path, buf[0], buf[1], buf[2], buf[3]);
        goto fail;
    }
    switch (code) {
    case 0x08: a.dtype = ENN_DTYPE_U8; break;
    case 0x0C: a.dtype = ENN_DTYPE_I32; break;
    case 0x0D: a.dtype = ENN_DTYPE_F32; break;
    case 0x0E: a.dtype = ENN_DTYPE_F64; break;
    default:
        s = enn_error(ENN_ERROR_FORMAT, "%s: IDX data type 0x%02x (%s) is not supported (unsigned byte, int, float, double are)",
                      path, code, idx_type_name(code));
        goto fail;
    }
    if (want_rank && rank != want_rank) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: an IDX %s file has %u dimension%s, but this one's magic %02x %02x %02x %02x "
                      "says %u (%s)", path, want_rank == 1 ? "label" : "image", want_rank, want_rank == 1 ? "" : "s",
                      buf[0], buf[1], buf[2], buf[3], rank,
                      rank == 1 ? "a label file?" : rank == 3 ? "an image file?" : "neither images nor labels");
        goto fail;
    }
    if (rank > ENN_ARRAY_MAX_RANK) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: IDX file has %u dimensions, more than %d", path, rank, ENN_ARRAY_MAX_RANK);
        goto fail;
    }
    size_t header = 4 + 4 * (size_t)rank;
    if (size < header) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: truncated: the IDX header of %u dimensions needs %zu bytes but %s holds %zu",
                      path, rank, header, kind, size);
        goto fail;
    }
    a.rank = rank;
    size_t count = 1, bytes;
    for (uint32_t i = 0; i < rank; i++) {
        a.shape[i] = enn_read_be32(buf + 4 + 4 * i);
        if (!enn_mul_size(count, (size_t)a.shape[i], &count)) count = SIZE_MAX;
    }
    if (!enn_mul_size(count, enn_dtype_size(a.dtype), &bytes)) bytes = SIZE_MAX;
    char what[256];
    describe(&a, code, what, sizeof what);
    size_t held = size - header;
    if (held < bytes) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: truncated: header says %s (%zu bytes of data) but %s holds %zu bytes of data",
                      path, what, bytes, kind, held);
        goto fail;
    }
    if (held > bytes) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: wrong size: %zu trailing bytes after the %zu bytes of data the header describes (%s)",
                      path, held - bytes, bytes, what);
        goto fail;
    }
    memmove(buf, buf + header, bytes);
    if (bytes == 0) {
        free(buf);
        buf = NULL;
    }
    a.data = buf;
    size_t esize = enn_dtype_size(a.dtype);
    if (esize > 1 && enn_host_is_little_endian()) enn_byteswap(a.data, count, esize);
    *out = a;
    enn_error_clear();
    return ENN_OK;
fail:
    free(buf);
    return s;
}

enn_status enn_dataset_from_images(const enn_array *img, const enn_array *lab, const char *images_name,
                                   const char *labels_name, enn_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (img->dtype != ENN_DTYPE_U8 || img->rank != 3)
        return enn_error(ENN_ERROR_FORMAT, "%s: images must be unsigned bytes in 3 dimensions [images, rows, columns]; "
                         "these have %u dimension(s) of %s", images_name, img->rank, enn_dtype_name(img->dtype));
    if (lab->dtype != ENN_DTYPE_U8 || lab->rank != 1)
        return enn_error(ENN_ERROR_FORMAT, "%s: labels must be unsigned bytes in 1 dimension; these have %u "
                         "dimension(s) of %s", labels_name, lab->rank, enn_dtype_name(lab->dtype));
    if (img->shape[0] != lab->shape[0])
        return enn_error(ENN_ERROR_FORMAT, "%s holds %llu images but %s holds %llu labels", images_name,
                         (unsigned long long)img->shape[0], labels_name, (unsigned long long)lab->shape[0]);
    size_t n = (size_t)img->shape[0], T = (size_t)img->shape[1], d = (size_t)img->shape[2];
    if (n && (!T || !d))
        return enn_error(ENN_ERROR_FORMAT, "%s: images of %zux%zu pixels hold nothing to train on", images_name, T, d);
    if (T > UINT32_MAX || d > UINT32_MAX)
        return enn_error(ENN_ERROR_FORMAT, "%s: images of %zux%zu are too large", images_name, T, d);
    size_t count = n * T * d; /* no overflow: the array held this many bytes */
    out->x = malloc(count ? count * sizeof(float) : 1);
    out->labels = malloc(n ? n * sizeof(uint32_t) : 1);
    if (!out->x || !out->labels) {
        enn_dataset_free(out);
        return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory for %zu images", images_name, n);
    }
    const uint8_t *pixels = img->data, *labels = lab->data;
    for (size_t i = 0; i < count; i++) out->x[i] = pixels[i] / 255.0f;
    uint32_t max_label = 0;
    for (size_t i = 0; i < n; i++) {
        out->labels[i] = labels[i];
        if (labels[i] > max_label) max_label = labels[i];
    }
    out->n = n;
    out->T = (uint32_t)T;
    out->d = (uint32_t)d;
    out->num_classes = n ? max_label + 1 : 0;
    return ENN_OK;
}

enn_status enn_load_idx_pair(const char *images_path, const char *labels_path, enn_dataset *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_load_idx_pair: out is NULL");
    memset(out, 0, sizeof *out);
    enn_array img = {0}, lab = {0};
    ENN_TRY(idx_read(images_path, 3, &img));
    enn_status s = idx_read(labels_path, 1, &lab);
    if (s == ENN_OK) s = enn_dataset_from_images(&img, &lab, images_path, labels_path, out);
    if (s == ENN_OK) enn_error_clear();
    enn_array_free(&img);
    enn_array_free(&lab);
    return s;
}
