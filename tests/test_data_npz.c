/* .npz files (numpy's savez / savez_compressed) and Keras's mnist.npz: files numpy wrote
 * (tests/data/npz/make_npz.py), whose contents follow formulas recomputed here; and a
 * missing key, a file that is no zip, and a damaged member refused by name. */
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "enn_data.h"

#define NPZ_DIR ENN_SOURCE_DIR "/tests/data/npz/"

/* make_npz.py's images: pixel (i, r, c) = ((i + offset) * 31 + r * 7 + c * 3) mod 256. */
static void check_images(const enn_dataset *ds, size_t n, int offset, const char *what)
{
    cr_assert_eq(ds->n, n, "%s: %zu images", what, ds->n);
    cr_assert(ds->T == 28 && ds->d == 28 && ds->x && ds->labels, "%s: [%u, %u]", what, ds->T, ds->d);
    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++) {
                float want = (float)((((int)i + offset) * 31 + r * 7 + c * 3) % 256) / 255.0f;
                cr_assert_eq(ds->x[(i * 28 + r) * 28 + c], want, "%s: image %zu pixel (%d, %d)", what, i, r, c);
            }
}

Test(data_npz, keras_mnist_layout)
{
    enn_dataset train, test;
    ENN_ASSERT_OK(enn_load_mnist_npz(NPZ_DIR "mnist_small.npz", &train, &test));
    check_images(&train, 12, 0, "x_train");
    check_images(&test, 5, 100, "x_test");
    for (uint32_t i = 0; i < 12; i++) cr_expect_eq(train.labels[i], i % 10, "y_train[%u]", i);
    for (uint32_t i = 0; i < 5; i++) cr_expect_eq(test.labels[i], i * 3 % 10, "y_test[%u]", i);
    cr_expect_eq(train.num_classes, 10);
    enn_dataset_free(&train);
    enn_dataset_free(&test);
    /* One part alone. */
    ENN_ASSERT_OK(enn_load_mnist_npz(NPZ_DIR "mnist_small.npz", NULL, &test));
    check_images(&test, 5, 100, "x_test alone");
    enn_dataset_free(&test);
}

Test(data_npz, arrays_by_key_any_dtype_and_byte_order)
{
    enn_array a;
    ENN_ASSERT_OK(enn_npz_read(NPZ_DIR "stored.npz", "ints", ENN_DTYPE_ANY, &a));
    cr_assert(a.dtype == ENN_DTYPE_I32 && a.rank == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    for (int i = 0; i < 6; i++) cr_expect_eq(((const int32_t *)a.data)[i], i);
    enn_array_free(&a);
    /* Big-endian doubles, asked for as float; the key with its .npy works too. */
    ENN_ASSERT_OK(enn_npz_read(NPZ_DIR "stored.npz", "doubles.npy", ENN_DTYPE_F32, &a));
    cr_assert(a.dtype == ENN_DTYPE_F32 && a.rank == 1 && a.shape[0] == 3);
    const float want[3] = {1.5f, -2.25f, 1e-3f};
    cr_expect_arr_eq(a.data, want, sizeof want);
    enn_array_free(&a);
}

Test(data_npz, bad_files_are_refused_by_name)
{
    enn_array a;
    enn_dataset train, test;
    memset(&a, 0x5a, sizeof a);
    test_expect_error(enn_npz_read(NPZ_DIR "stored.npz", "x_train", ENN_DTYPE_ANY, &a), ENN_ERROR_FORMAT, "stored.npz",
                      "no array 'x_train' in this .npz (it holds: ints.npy, doubles.npy)");
    cr_assert_null(a.data);
    /* mnist.npz's keys missing: named, and both outputs left empty. */
    test_expect_error(enn_load_mnist_npz(NPZ_DIR "stored.npz", &train, &test), ENN_ERROR_FORMAT, "stored.npz",
                      "no array 'x_train'");
    cr_assert(!train.x && !test.x && !train.n);
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_write_file(test_path(path, dir, "text.npz"), "not a zip at all\n", 17);
    test_expect_error(enn_npz_read(path, "a", ENN_DTYPE_ANY, &a), ENN_ERROR_FORMAT, "text.npz", "not a .npz (zip) file");
    test_expect_error(enn_npz_read(test_path(path, dir, "absent.npz"), "a", ENN_DTYPE_ANY, &a), ENN_ERROR_IO,
                      "absent.npz", "cannot open");
    /* A byte of a deflated member changed: refused (inflate error or CRC-32), not read. */
    unsigned char *bytes;
    size_t n = test_read_file(NPZ_DIR "mnist_small.npz", &bytes);
    bytes[n / 3] ^= 0x55;
    test_write_file(test_path(path, dir, "damaged.npz"), bytes, n);
    free(bytes);
    enn_status s = enn_load_mnist_npz(path, &train, &test);
    cr_expect_neq(s, ENN_OK, "a damaged .npz loaded");
    cr_expect(strstr(enn_last_error(), "damaged.npz"), "%s", enn_last_error());
    cr_assert(!train.x && !test.x);
    /* And a .npz given to the .npy reader says what it is. */
    test_expect_error(enn_npy_read(NPZ_DIR "stored.npz", ENN_DTYPE_ANY, &a), ENN_ERROR_FORMAT, "stored.npz",
                      "this is a .npz");
    test_tmpdir_remove(dir);
}
