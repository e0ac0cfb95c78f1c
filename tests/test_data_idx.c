/* IDX loader (MNIST, Fashion-MNIST): tiny files in the exact format, raw and gzip, and
 * every way a file can be wrong. The reference is the bytes the test writes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_files.h"
#include "enn_data.h"

/* An IDX file: 00 00 type rank, big-endian dims, then `data`. Returns its size. */
static size_t make_idx(unsigned char *out, unsigned char type, unsigned rank, const uint32_t *dims, const void *data,
                       size_t data_bytes)
{
    unsigned char *p = out;
    *p++ = 0, *p++ = 0, *p++ = type, *p++ = (unsigned char)rank;
    for (unsigned i = 0; i < rank; i++) {
        *p++ = (unsigned char)(dims[i] >> 24), *p++ = (unsigned char)(dims[i] >> 16);
        *p++ = (unsigned char)(dims[i] >> 8), *p++ = (unsigned char)dims[i];
    }
    memcpy(p, data, data_bytes);
    return (size_t)(p - out) + data_bytes;
}

enum { N = 3, ROWS = 4, COLS = 5 };

typedef struct pair_files {
    char dir[TEST_PATH_MAX], images[TEST_PATH_MAX], labels[TEST_PATH_MAX];
    unsigned char pixels[N * ROWS * COLS], label_bytes[N];
    unsigned char image_file[16 + N * ROWS * COLS], label_file[8 + N];
    size_t image_size, label_size;
} pair_files;

static void make_pair(pair_files *f, int gz)
{
    test_tmpdir(f->dir);
    uint64_t seed = 7;
    for (int i = 0; i < N * ROWS * COLS; i++) f->pixels[i] = (unsigned char)(test_rand_u64(&seed) & 0xff);
    f->pixels[0] = 0, f->pixels[1] = 255;
    for (int i = 0; i < N; i++) f->label_bytes[i] = (unsigned char)(i * 4 + 1); /* 1, 5, 9 */
    uint32_t idims[3] = {N, ROWS, COLS}, ldims[1] = {N};
    f->image_size = make_idx(f->image_file, 0x08, 3, idims, f->pixels, sizeof f->pixels);
    f->label_size = make_idx(f->label_file, 0x08, 1, ldims, f->label_bytes, sizeof f->label_bytes);
    test_path(f->images, f->dir, gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte");
    test_path(f->labels, f->dir, gz ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte");
    (gz ? test_write_gz : test_write_file)(f->images, f->image_file, f->image_size);
    (gz ? test_write_gz : test_write_file)(f->labels, f->label_file, f->label_size);
}

static void check_pair(const pair_files *f)
{
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_idx_pair(f->images, f->labels, &ds));
    cr_assert_eq(ds.n, N);
    cr_assert_eq(ds.T, ROWS);
    cr_assert_eq(ds.d, COLS);
    cr_assert_eq(ds.num_classes, 10);
    cr_assert_null(ds.y);
    cr_assert_null(ds.tokens);
    for (int i = 0; i < N; i++) cr_assert_eq(ds.labels[i], f->label_bytes[i]);
    /* pixel / 255 in float is exact to rounding: compare at 1 ulp of 1.0. */
    for (int i = 0; i < N; i++)
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < COLS; c++) {
                double want = f->pixels[(i * ROWS + r) * COLS + c] / 255.0;
                float got = ds.x[((size_t)i * ds.T + r) * ds.d + c];
                cr_assert(got >= 0.0f && got <= 1.0f);
                cr_assert(fabs(got - want) <= 1.2e-7, "x[%d,%d,%d] = %.9g, want %.9g", i, r, c, got, want);
            }
    enn_dataset_free(&ds);
    cr_assert_null(ds.x);
}

Test(data_idx, raw_pair_round_trips) { pair_files f; make_pair(&f, 0); check_pair(&f); test_tmpdir_remove(f.dir); }
Test(data_idx, gzip_pair_round_trips) { pair_files f; make_pair(&f, 1); check_pair(&f); test_tmpdir_remove(f.dir); }

Test(data_idx, other_types_convert_from_big_endian)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    /* 0x0D float [2, 2]: 1.5, -2, 0.25, 1e10, big-endian. */
    const unsigned char be_floats[16] = {0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0, 0x3e, 0x80, 0, 0, 0x50, 0x15, 0x02, 0xf9};
    unsigned char file[64];
    uint32_t dims[2] = {2, 2};
    test_write_file(test_path(path, dir, "f.idx"), file, make_idx(file, 0x0D, 2, dims, be_floats, 16));
    enn_array a;
    ENN_ASSERT_OK(enn_idx_read(path, &a));
    cr_assert_eq(a.dtype, ENN_DTYPE_F32);
    cr_assert_eq(a.rank, 2);
    cr_assert_eq(a.shape[0], 2);
    const float *v = a.data;
    cr_assert_eq(v[0], 1.5f);
    cr_assert_eq(v[1], -2.0f);
    cr_assert_eq(v[2], 0.25f);
    cr_assert_eq(v[3], 1e10f);
    enn_array_free(&a);
    /* 0x0C int [3]: -2, 1, 65536. */
    const unsigned char be_ints[12] = {0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0, 1, 0, 0};
    uint32_t n3 = 3;
    test_write_file(test_path(path, dir, "i.idx"), file, make_idx(file, 0x0C, 1, &n3, be_ints, 12));
    ENN_ASSERT_OK(enn_idx_read(path, &a));
    cr_assert_eq(a.dtype, ENN_DTYPE_I32);
    const int32_t *iv = a.data;
    cr_assert_eq(iv[0], -2);
    cr_assert_eq(iv[1], 1);
    cr_assert_eq(iv[2], 65536);
    enn_array_free(&a);
    test_tmpdir_remove(dir);
}

/* Writes bytes to dir/name (gzip or not) and expects enn_idx_read to fail. */
static void expect_idx_error(const char *dir, const char *name, const void *bytes, size_t n, int gz, enn_status want,
                             const char *problem)
{
    char path[TEST_PATH_MAX];
    (gz ? test_write_gz : test_write_file)(test_path(path, dir, name), bytes, n);
    enn_array a;
    memset(&a, 0x5a, sizeof a);
    test_expect_error(enn_idx_read(path, &a), want, name, problem);
    cr_assert_null(a.data, "output left non-empty after a failure");
}

Test(data_idx, truncated_data_is_rejected_with_the_counts)
{
    pair_files f;
    make_pair(&f, 0);
    expect_idx_error(f.dir, "cut-images-idx3-ubyte", f.image_file, f.image_size - 7, 0, ENN_ERROR_FORMAT,
                     "truncated: header says 3 images of 4x5 (60 bytes of data) but the file holds 53 bytes");
    expect_idx_error(f.dir, "cut-images-idx3-ubyte.gz", f.image_file, f.image_size - 7, 1, ENN_ERROR_FORMAT,
                     "truncated: header says 3 images of 4x5 (60 bytes of data) but the decompressed file holds 53");
    expect_idx_error(f.dir, "cut-labels-idx1-ubyte", f.label_file, f.label_size - 1, 0, ENN_ERROR_FORMAT,
                     "header says 3 labels");
    /* The header itself cut short: 3 dims need 16 bytes. */
    expect_idx_error(f.dir, "cut-header", f.image_file, 10, 0, ENN_ERROR_FORMAT, "truncated: the IDX header");
    expect_idx_error(f.dir, "two-bytes", f.image_file, 2, 0, ENN_ERROR_FORMAT, "truncated");
    test_tmpdir_remove(f.dir);
}

Test(data_idx, trailing_bytes_are_rejected)
{
    pair_files f;
    make_pair(&f, 0);
    unsigned char longer[sizeof f.image_file + 5];
    memcpy(longer, f.image_file, f.image_size);
    memset(longer + f.image_size, 0, 5);
    expect_idx_error(f.dir, "long-images", longer, f.image_size + 5, 0, ENN_ERROR_FORMAT, "wrong size: 5 trailing bytes");
    expect_idx_error(f.dir, "long-images.gz", longer, f.image_size + 5, 1, ENN_ERROR_FORMAT, "5 trailing bytes");
    test_tmpdir_remove(f.dir);
}

Test(data_idx, wrong_magic_and_empty_files_are_rejected)
{
    char dir[TEST_PATH_MAX];
    test_tmpdir(dir);
    const char pgm[] = "P5\n28 28\n255\n";
    expect_idx_error(dir, "picture.pgm", pgm, sizeof pgm - 1, 0, ENN_ERROR_FORMAT, "not an IDX file: wrong magic 50 35 0a 32");
    const unsigned char short_type[8] = {0, 0, 0x0B, 1, 0, 0, 0, 0};
    expect_idx_error(dir, "shorts", short_type, 8, 0, ENN_ERROR_FORMAT, "0x0b (short) is not supported");
    const unsigned char rank0[4] = {0, 0, 8, 0};
    expect_idx_error(dir, "rank0", rank0, 4, 0, ENN_ERROR_FORMAT, "wrong magic");
    expect_idx_error(dir, "empty-images", "", 0, 0, ENN_ERROR_FORMAT, "empty file");
    expect_idx_error(dir, "empty-images.gz", "", 0, 1, ENN_ERROR_FORMAT, "empty file");
    char path[TEST_PATH_MAX];
    enn_array a;
    test_expect_error(enn_idx_read(test_path(path, dir, "no-such-file"), &a), ENN_ERROR_IO, "no-such-file", "cannot open");
    test_tmpdir_remove(dir);
}

Test(data_idx, damaged_gzip_is_rejected)
{
    pair_files f;
    make_pair(&f, 1);
    unsigned char *gz;
    size_t n = test_read_file(f.images, &gz);
    char path[TEST_PATH_MAX];
    enn_array a;
    /* Compressed stream cut in the middle. */
    test_write_file(test_path(path, f.dir, "cut.gz"), gz, n / 2);
    test_expect_error(enn_idx_read(path, &a), ENN_ERROR_FORMAT, "cut.gz", "truncated gzip stream");
    /* CRC-32 in the trailer (bytes n-8..n-5) damaged. */
    gz[n - 8] ^= 0x55;
    test_write_file(test_path(path, f.dir, "crc.gz"), gz, n);
    test_expect_error(enn_idx_read(path, &a), ENN_ERROR_FORMAT, "crc.gz", "corrupt gzip data");
    gz[n - 8] ^= 0x55;
    /* Compression method byte (8 = deflate) damaged. */
    gz[2] = 7;
    test_write_file(test_path(path, f.dir, "method.gz"), gz, n);
    test_expect_error(enn_idx_read(path, &a), ENN_ERROR_FORMAT, "method.gz", "corrupt gzip data");
    free(gz);
    test_tmpdir_remove(f.dir);
}

Test(data_idx, pairs_that_do_not_match_are_rejected)
{
    pair_files f;
    make_pair(&f, 0);
    enn_dataset ds;
    /* Swapped arguments. */
    test_expect_error(enn_load_idx_pair(f.labels, f.images, &ds), ENN_ERROR_FORMAT, "train-labels-idx1-ubyte",
                      "an IDX image file has 3 dimensions, but this one's magic 00 00 08 01 says 1 (a label file?)");
    cr_assert_null(ds.x);
    /* The images right, the labels an image file: named from its magic, not sized by
     * dimensions it does not have. */
    test_expect_error(enn_load_idx_pair(f.images, f.images, &ds), ENN_ERROR_FORMAT, "train-images-idx3-ubyte",
                      "an IDX label file has 1 dimension, but this one's magic 00 00 08 03 says 3 (an image file?)");
    cr_assert_null(ds.x);
    /* Images of no rows. */
    unsigned char empty_rows[16];
    uint32_t no_rows[3] = {3, 0, 4};
    char rows_path[TEST_PATH_MAX];
    test_write_file(test_path(rows_path, f.dir, "no-rows"), empty_rows, make_idx(empty_rows, 0x08, 3, no_rows, "", 0));
    test_expect_error(enn_load_idx_pair(rows_path, f.labels, &ds), ENN_ERROR_FORMAT, "no-rows",
                      "images of 0x4 pixels hold nothing to train on");
    /* Two labels for three images. */
    unsigned char two[10];
    uint32_t n2 = 2;
    char path[TEST_PATH_MAX];
    test_write_file(test_path(path, f.dir, "two-labels"), two, make_idx(two, 0x08, 1, &n2, f.label_bytes, 2));
    test_expect_error(enn_load_idx_pair(f.images, path, &ds), ENN_ERROR_FORMAT, "two-labels", "holds 3 images but");
    cr_assert_null(ds.x);
    cr_assert_null(ds.labels);
    test_tmpdir_remove(f.dir);
}

/* Debian's dataset-fashion-mnist package, when installed (tools/setup.sh). */
#define FASHION_DIR "/usr/share/datasets/fashion-mnist/"

static void check_fashion(const char *images, const char *labels, size_t n)
{
    if (access(images, R_OK) != 0 || access(labels, R_OK) != 0) {
        cr_skip_test("%s not installed (apt-get install dataset-fashion-mnist)", images);
    }
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_idx_pair(images, labels, &ds));
    cr_assert_eq(ds.n, n);
    cr_assert_eq(ds.T, 28);
    cr_assert_eq(ds.d, 28);
    cr_assert_eq(ds.num_classes, 10);
    /* Fashion-MNIST is balanced: n/10 images of each class. */
    size_t per_class[10] = {0};
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(ds.labels[i], 10);
        per_class[ds.labels[i]]++;
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(per_class[c], n / 10, "class %d has %zu images", c, per_class[c]);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < n * 28 * 28; i++) {
        if (ds.x[i] < lo) lo = ds.x[i];
        if (ds.x[i] > hi) hi = ds.x[i];
    }
    cr_assert_eq(lo, 0.0f);
    cr_assert_eq(hi, 1.0f);
    enn_dataset_free(&ds);
}

Test(data_idx, debian_fashion_mnist_train, .timeout = 120)
{
    check_fashion(FASHION_DIR "train-images-idx3-ubyte.gz", FASHION_DIR "train-labels-idx1-ubyte.gz", 60000);
}
Test(data_idx, debian_fashion_mnist_test, .timeout = 120)
{
    check_fashion(FASHION_DIR "t10k-images-idx3-ubyte.gz", FASHION_DIR "t10k-labels-idx1-ubyte.gz", 10000);
}
