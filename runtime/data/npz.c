/* .npz files, numpy's savez / savez_compressed: a zip archive of .npy files, one per
 * array, stored or deflated (libzip reads both). Keras's mnist.npz is one. */
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "data/array.h"
#include "data/file.h"

/* A member's bytes, malloc'ed. `name` without ".npy" is looked up with it too. */
static enn_status read_member(zip_t *z, const char *path, const char *name, uint8_t **data, size_t *size,
                              char *label, size_t label_size)
{
    char member[512];
    snprintf(member, sizeof member, "%s.npy", name);
    zip_int64_t index = zip_name_locate(z, member, 0);
    if (index < 0) {
        snprintf(member, sizeof member, "%s", name);
        index = zip_name_locate(z, member, 0);
    }
    if (index < 0) {
        /* Name what is there, so a wrong key is easy to put right. */
        char have[256] = "";
        zip_int64_t n = zip_get_num_entries(z, 0);
        for (zip_int64_t i = 0; i < n && strlen(have) < 200; i++) {
            const char *e = zip_get_name(z, (zip_uint64_t)i, 0);
            if (e) snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", e);
        }
        return enn_error(ENN_ERROR_FORMAT, "%s: no array '%s' in this .npz (it holds: %s)", path, name,
                         have[0] ? have : "nothing");
    }
    snprintf(label, label_size, "%s:%s", path, member);
    zip_stat_t st;
    if (zip_stat_index(z, (zip_uint64_t)index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return enn_error(ENN_ERROR_FORMAT, "%s: cannot read the member's size: %s", label, zip_strerror(z));
    if (st.size > SIZE_MAX - 1)
        return enn_error(ENN_ERROR_FORMAT, "%s: %llu bytes are too many to address", label, (unsigned long long)st.size);
    *size = (size_t)st.size;
    *data = malloc(*size ? *size : 1);
    if (!*data) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory for %zu bytes", label, *size);
    zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)index, 0);
    zip_int64_t got = f ? zip_fread(f, *data, st.size) : -1;
    enn_status s = ENN_OK;
    if (!f || got < 0 || (zip_uint64_t)got != st.size)
        s = enn_error(ENN_ERROR_FORMAT, "%s: cannot read the member (%s)", label,
                      f ? zip_file_strerror(f) : zip_strerror(z));
    /* zip_fclose checks the member's CRC-32: a damaged archive is refused here. */
    if (f && zip_fclose(f) != 0 && s == ENN_OK)
        s = enn_error(ENN_ERROR_FORMAT, "%s: damaged member (its CRC-32 does not match)", label);
    if (s != ENN_OK) {
        free(*data);
        *data = NULL;
    }
    return s;
}

static enn_status open_npz(const char *path, zip_t **z)
{
    if (!path) return enn_error(ENN_ERROR_INVALID_ARGUMENT, ".npz path is NULL");
    int err = 0;
    *z = zip_open(path, ZIP_RDONLY, &err);
    if (*z) return ENN_OK;
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    enn_status s = err == ZIP_ER_NOENT || err == ZIP_ER_OPEN || err == ZIP_ER_READ
                       ? enn_error(ENN_ERROR_IO, "%s: cannot open: %s", path, zip_error_strerror(&e))
                       : enn_error(ENN_ERROR_FORMAT, "%s: not a .npz (zip) file: %s", path, zip_error_strerror(&e));
    zip_error_fini(&e);
    return s;
}

/* The array `name` of an opened archive, as enn_npz_read gives it. */
static enn_status read_array(zip_t *z, const char *path, const char *name, enn_dtype want, enn_array *out)
{
    uint8_t *data = NULL;
    size_t size = 0;
    char label[1024];
    ENN_TRY(read_member(z, path, name, &data, &size, label, sizeof label));
    return enn_npy_from_bytes(label, data, size, want, out);
}

enn_status enn_npz_read(const char *path, const char *name, enn_dtype want, enn_array *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_npz_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name || !name[0]) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: no array name given", path ? path : "(null)");
    if (want != ENN_DTYPE_ANY && enn_dtype_size(want) == 0)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: requested dtype %d is not a dtype", path ? path : "(null)", (int)want);
    zip_t *z;
    ENN_TRY(open_npz(path, &z));
    enn_status s = read_array(z, path, name, want, out);
    zip_discard(z);
    return s;
}

enn_status enn_load_mnist_npz(const char *path, enn_dataset *train, enn_dataset *test)
{
    if (!train && !test) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_load_mnist_npz: no output");
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    static const char *const keys[2][2] = {{"x_train", "y_train"}, {"x_test", "y_test"}};
    enn_dataset *outs[2] = {train, test};
    zip_t *z;
    ENN_TRY(open_npz(path, &z));   /* once: the four arrays come from one file */
    enn_status s = ENN_OK;
    for (int part = 0; part < 2 && s == ENN_OK; part++) {
        if (!outs[part]) continue;
        enn_array x = {0}, y = {0};
        char xs[1024], ys[1024];
        snprintf(xs, sizeof xs, "%s:%s", path ? path : "(null)", keys[part][0]);
        snprintf(ys, sizeof ys, "%s:%s", path ? path : "(null)", keys[part][1]);
        s = read_array(z, path, keys[part][0], ENN_DTYPE_ANY, &x);
        if (s == ENN_OK) s = read_array(z, path, keys[part][1], ENN_DTYPE_ANY, &y);
        if (s == ENN_OK) s = enn_dataset_from_images(&x, &y, xs, ys, outs[part]);
        enn_array_free(&x);
        enn_array_free(&y);
    }
    zip_discard(z);
    if (s != ENN_OK) {
        enn_dataset_free(train);
        enn_dataset_free(test);
        return s;
    }
    enn_error_clear();
    return ENN_OK;
}
