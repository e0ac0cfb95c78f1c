/* CIFAR-10 binary batches as rows [32, 96]. The reference builds each image the way
 * Keras does (an HWC array [32][32][3] from the three colour planes) and flattens it. */
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "enn_data.h"

enum { RECORD = 3073 };

static void make_records(unsigned char *out, size_t count, uint64_t seed)
{
    for (size_t r = 0; r < count; r++) {
        out[r * RECORD] = (unsigned char)((r * 3 + seed) % 10);
        for (int i = 1; i < RECORD; i++) out[r * RECORD + i] = (unsigned char)test_rand_u64(&seed);
    }
}

/* Keras's view of record r: image[row][col][channel] = plane[channel][row][col]. */
static void reference_rows(const unsigned char *record, float rows[32 * 96])
{
    float hwc[32][32][3];
    for (int ch = 0; ch < 3; ch++)
        for (int row = 0; row < 32; row++)
            for (int col = 0; col < 32; col++) hwc[row][col][ch] = record[1 + ch * 1024 + row * 32 + col] / 255.0f;
    memcpy(rows, hwc, sizeof hwc); /* reshape [32, 32, 3] -> [32, 96] */
}

Test(data_cifar, batches_round_trip_as_rows)
{
    char dir[TEST_PATH_MAX], p1[TEST_PATH_MAX], p2[TEST_PATH_MAX];
    test_tmpdir(dir);
    unsigned char *a = malloc(2 * RECORD), *b = malloc(3 * RECORD);
    make_records(a, 2, 1);
    make_records(b, 3, 2);
    a[0] = 0, b[RECORD] = 9; /* both ends of the label range */
    test_write_file(test_path(p1, dir, "data_batch_1.bin"), a, 2 * RECORD);
    test_write_gz(test_path(p2, dir, "data_batch_2.bin.gz"), b, 3 * RECORD);
    const char *paths[2] = {p1, p2};
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_cifar10(paths, 2, &ds));
    cr_assert_eq(ds.n, 5);
    cr_assert_eq(ds.T, 32);
    cr_assert_eq(ds.d, 96);
    cr_assert_eq(ds.num_classes, 10);
    float want[32 * 96];
    for (int i = 0; i < 5; i++) {
        const unsigned char *rec = i < 2 ? a + i * RECORD : b + (i - 2) * RECORD;
        cr_assert_eq(ds.labels[i], rec[0]);
        reference_rows(rec, want);
        cr_assert_arr_eq(ds.x + (size_t)i * 32 * 96, want, sizeof want, "image %d differs from Keras's layout", i);
    }
    /* Spot check of the documented formula: x[i, r, 3c + ch] = record[1 + 1024 ch + 32 r + c] / 255. */
    cr_assert_eq(ds.x[(size_t)1 * 3072 + 5 * 96 + 3 * 7 + 2], a[RECORD + 1 + 2048 + 5 * 32 + 7] / 255.0f);
    enn_dataset_free(&ds);
    free(a);
    free(b);
    test_tmpdir_remove(dir);
}

static void expect_cifar_error(const char *dir, const char *name, const void *bytes, size_t n, enn_status want,
                               const char *problem)
{
    char path[TEST_PATH_MAX];
    test_write_file(test_path(path, dir, name), bytes, n);
    const char *paths[1] = {path};
    enn_dataset ds;
    memset(&ds, 0x5a, sizeof ds);
    test_expect_error(enn_load_cifar10(paths, 1, &ds), want, name, problem);
    cr_assert_null(ds.x);
    cr_assert_null(ds.labels);
}

Test(data_cifar, malformed_batches_are_rejected)
{
    char dir[TEST_PATH_MAX];
    test_tmpdir(dir);
    unsigned char *rec = calloc(4, RECORD);
    make_records(rec, 3, 5);
    expect_cifar_error(dir, "empty_batch.bin", "", 0, ENN_ERROR_FORMAT, "empty file");
    expect_cifar_error(dir, "cut_batch.bin", rec, 2 * RECORD - 100, ENN_ERROR_FORMAT,
                       "wrong size: 6046 bytes is not a whole number of 3073-byte CIFAR-10 records (1 records and 2973 bytes over; truncated");
    expect_cifar_error(dir, "long_batch.bin", rec, 2 * RECORD + 1, ENN_ERROR_FORMAT, "2 records and 1 bytes over");
    rec[2 * RECORD] = 10;
    expect_cifar_error(dir, "label_batch.bin", rec, 3 * RECORD, ENN_ERROR_FORMAT, "record 2 (byte offset 6146) has label 10");
    /* The downloaded archive instead of its members: a tar header ("ustar" at 257). */
    memcpy(rec + 257, "ustar", 5);
    expect_cifar_error(dir, "cifar-10-binary.tar", rec, 4 * RECORD, ENN_ERROR_FORMAT, "this is a tar archive");
    /* The other forms a user may hold: a pickled batch of the python version (protocol 2,
     * as the archive's are), and CIFAR-100's records of two label bytes. */
    unsigned char *other = calloc(3, RECORD + 1);
    memcpy(other, "\x80\x02}q\x00", 5);
    expect_cifar_error(dir, "test_batch", other, 2000, ENN_ERROR_FORMAT, "a Python pickle (CIFAR-10's python version)");
    other[0] = 3;
    expect_cifar_error(dir, "train.bin", other, 3 * (RECORD + 1), ENN_ERROR_FORMAT,
                       "9222 bytes are 3 records of 3074 bytes, CIFAR-100's");
    free(other);
    /* A failure in the second file frees what the first one loaded (ASan checks). */
    char good[TEST_PATH_MAX], missing[TEST_PATH_MAX];
    make_records(rec, 1, 5);
    test_write_file(test_path(good, dir, "data_batch_1.bin"), rec, RECORD);
    const char *paths[2] = {good, test_path(missing, dir, "data_batch_9.bin")};
    enn_dataset ds;
    test_expect_error(enn_load_cifar10(paths, 2, &ds), ENN_ERROR_IO, "data_batch_9.bin", "cannot open");
    cr_assert_null(ds.x);
    test_expect_error(enn_load_cifar10(paths, 0, &ds), ENN_ERROR_INVALID_ARGUMENT, NULL, "no files");
    free(rec);
    test_tmpdir_remove(dir);
}

/* The real batches, when ENN_CIFAR10_DIR names the extracted cifar-10-batches-bin folder
 * (no download in tests): 50000 + 10000 images, classes balanced (5000 / 1000 each). */
static void check_real(const char *const *names, uint32_t count, size_t n)
{
    const char *dir = getenv("ENN_CIFAR10_DIR");
    if (!dir || !dir[0]) cr_skip_test("ENN_CIFAR10_DIR not set");
    char paths[6][TEST_PATH_MAX];
    const char *p[6];
    for (uint32_t i = 0; i < count; i++) p[i] = test_path(paths[i], dir, names[i]);
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_cifar10(p, count, &ds));
    cr_assert_eq(ds.n, n);
    size_t per_class[10] = {0};
    for (size_t i = 0; i < n; i++) per_class[ds.labels[i]]++;
    for (int c = 0; c < 10; c++) cr_assert_eq(per_class[c], n / 10, "class %d: %zu images", c, per_class[c]);
    enn_dataset_free(&ds);
}

Test(data_cifar, real_batches_when_present, .timeout = 120)
{
    const char *train[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                            "data_batch_5.bin"};
    check_real(train, 5, 50000);
    const char *test[1] = {"test_batch.bin"};
    check_real(test, 1, 10000);
}
