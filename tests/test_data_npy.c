/* .npy reader and writer against files numpy itself wrote (npy_numpy_ref.h): reading
 * them gives numpy's values, and writing the same arrays gives numpy's bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_files.h"
#include "enn_data.h"
#include "npy_numpy_ref.h"

typedef struct scratch {
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
} scratch;

static const char *put(scratch *s, const char *name, const void *bytes, size_t n)
{
    test_write_file(test_path(s->path, s->dir, name), bytes, n);
    return s->path;
}

static enn_array read_ok(scratch *s, const char *name, const void *bytes, size_t n, enn_dtype want)
{
    enn_array a;
    ENN_ASSERT_OK(enn_npy_read(put(s, name, bytes, n), want, &a));
    return a;
}

Test(data_npy, reads_what_numpy_wrote)
{
    scratch s;
    test_tmpdir(s.dir);
    enn_array a = read_ok(&s, "f4.npy", npy_f4_2x3, NPY_F4_2X3_LEN, ENN_DTYPE_ANY);
    cr_assert_eq(a.dtype, ENN_DTYPE_F32);
    cr_assert_eq(a.rank, 2);
    cr_assert_eq(a.shape[0], 2);
    cr_assert_eq(a.shape[1], 3);
    for (int i = 0; i < 6; i++) cr_assert_eq(((float *)a.data)[i], i * 0.5f - 1.0f); /* exact in binary */
    enn_array_free(&a);

    a = read_ok(&s, "u1.npy", npy_u1_5, NPY_U1_5_LEN, ENN_DTYPE_ANY);
    const uint8_t u1[5] = {0, 1, 127, 128, 255};
    cr_assert_eq(a.dtype, ENN_DTYPE_U8);
    cr_assert_eq(a.rank, 1);
    cr_assert_eq(a.shape[0], 5);
    cr_assert_arr_eq(a.data, u1, 5);
    enn_array_free(&a);

    a = read_ok(&s, "i8.npy", npy_i8_scalar, NPY_I8_SCALAR_LEN, ENN_DTYPE_ANY);
    cr_assert_eq(a.dtype, ENN_DTYPE_I64);
    cr_assert_eq(a.rank, 0);
    cr_assert_eq(enn_array_count(&a), 1);
    cr_assert_eq(*(int64_t *)a.data, -1234567890123ll);
    enn_array_free(&a);

    a = read_ok(&s, "f8.npy", npy_f8_2x1x2, NPY_F8_2X1X2_LEN, ENN_DTYPE_ANY);
    cr_assert_eq(a.rank, 3);
    cr_assert_eq(a.shape[1], 1);
    const double f8[4] = {1.5, -2.25, 1e300, -0.0};
    cr_assert_arr_eq(a.data, f8, sizeof f8);
    enn_array_free(&a);

    a = read_ok(&s, "u4.npy", npy_u4_2x2, NPY_U4_2X2_LEN, ENN_DTYPE_ANY);
    const uint32_t u4[4] = {0, 1, 4294967295u, 7};
    cr_assert_eq(a.dtype, ENN_DTYPE_U32);
    cr_assert_arr_eq(a.data, u4, sizeof u4);
    enn_array_free(&a);

    /* Big-endian data ('>f8') comes back in host order. */
    a = read_ok(&s, "big.npy", npy_big_f8_3, NPY_BIG_F8_3_LEN, ENN_DTYPE_F64);
    const double big[3] = {1.0, -2.5, 3.25};
    cr_assert_arr_eq(a.data, big, sizeof big);
    enn_array_free(&a);

    /* Format version 2.0 (4-byte header length). */
    a = read_ok(&s, "v2.npy", npy_v2_i4_2, NPY_V2_I4_2_LEN, ENN_DTYPE_I32);
    cr_assert_eq(((int32_t *)a.data)[0], 5);
    cr_assert_eq(((int32_t *)a.data)[1], -6);
    enn_array_free(&a);
    test_tmpdir_remove(s.dir);
}

Test(data_npy, converts_to_float_on_request)
{
    scratch s;
    test_tmpdir(s.dir);
    enn_array a = read_ok(&s, "i4.npy", npy_i4_3, NPY_I4_3_LEN, ENN_DTYPE_F32);
    cr_assert_eq(a.dtype, ENN_DTYPE_F32);
    const float *f = a.data;
    cr_assert_eq(f[0], -1.0f);
    cr_assert_eq(f[1], 0.0f);
    cr_assert_eq(f[2], 2147483648.0f); /* 2^31 - 1 rounds to 2^31 in float */
    enn_array_free(&a);
    a = read_ok(&s, "f8.npy", npy_f8_2x1x2, NPY_F8_2X1X2_LEN, ENN_DTYPE_F32);
    f = a.data;
    cr_assert_eq(f[0], 1.5f);
    cr_assert_eq(f[1], -2.25f);
    cr_assert(isinf(f[2]) && f[2] > 0, "1e300 as float is +inf, got %g", f[2]);
    cr_assert(f[3] == 0.0f && signbit(f[3]));
    enn_array_free(&a);
    /* Another type than the file's, not float: refused, nothing converted silently. */
    enn_array b;
    test_expect_error(enn_npy_read(put(&s, "f4.npy", npy_f4_2x3, NPY_F4_2X3_LEN), ENN_DTYPE_I32, &b), ENN_ERROR_FORMAT,
                      "f4.npy", "holds <f4 data, but <i4 was asked for");
    cr_assert_null(b.data);
    test_tmpdir_remove(s.dir);
}

/* Writing an array gives exactly numpy's bytes. */
static void expect_numpy_bytes(scratch *s, const char *name, enn_dtype type, uint32_t rank, const uint64_t *shape,
                               const void *values, const char *numpy_bytes, size_t numpy_len)
{
    enn_array a = {.dtype = type, .rank = rank, .data = (void *)values};
    for (uint32_t i = 0; i < rank; i++) a.shape[i] = shape[i];
    ENN_ASSERT_OK(enn_npy_write(test_path(s->path, s->dir, name), &a));
    unsigned char *got;
    size_t n = test_read_file(s->path, &got);
    cr_assert_eq(n, numpy_len, "%s: %zu bytes, numpy wrote %zu", name, n, numpy_len);
    cr_assert_arr_eq(got, numpy_bytes, n, "%s differs from numpy's file", name);
    free(got);
}

Test(data_npy, writes_what_numpy_writes)
{
    scratch s;
    test_tmpdir(s.dir);
    float f4[6];
    for (int i = 0; i < 6; i++) f4[i] = i * 0.5f - 1.0f;
    expect_numpy_bytes(&s, "f4.npy", ENN_DTYPE_F32, 2, (uint64_t[]){2, 3}, f4, npy_f4_2x3, NPY_F4_2X3_LEN);
    const uint8_t u1[5] = {0, 1, 127, 128, 255};
    expect_numpy_bytes(&s, "u1.npy", ENN_DTYPE_U8, 1, (uint64_t[]){5}, u1, npy_u1_5, NPY_U1_5_LEN);
    const int64_t i8 = -1234567890123ll;
    expect_numpy_bytes(&s, "i8.npy", ENN_DTYPE_I64, 0, NULL, &i8, npy_i8_scalar, NPY_I8_SCALAR_LEN);
    const double f8[4] = {1.5, -2.25, 1e300, -0.0};
    expect_numpy_bytes(&s, "f8.npy", ENN_DTYPE_F64, 3, (uint64_t[]){2, 1, 2}, f8, npy_f8_2x1x2, NPY_F8_2X1X2_LEN);
    const int32_t i4[3] = {-1, 0, 2147483647};
    expect_numpy_bytes(&s, "i4.npy", ENN_DTYPE_I32, 1, (uint64_t[]){3}, i4, npy_i4_3, NPY_I4_3_LEN);
    const uint32_t u4[4] = {0, 1, 4294967295u, 7};
    expect_numpy_bytes(&s, "u4.npy", ENN_DTYPE_U32, 2, (uint64_t[]){2, 2}, u4, npy_u4_2x2, NPY_U4_2X2_LEN);
    /* The float convenience writer is the same file. */
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(s.path, s.dir, "f4b.npy"), f4, 2, (uint64_t[]){2, 3}));
    unsigned char *got;
    cr_assert_eq(test_read_file(s.path, &got), NPY_F4_2X3_LEN);
    cr_assert_arr_eq(got, npy_f4_2x3, NPY_F4_2X3_LEN);
    free(got);
    test_tmpdir_remove(s.dir);
}

Test(data_npy, high_rank_and_empty_arrays_round_trip)
{
    scratch s;
    test_tmpdir(s.dir);
    enn_array a = {.dtype = ENN_DTYPE_F32, .rank = ENN_ARRAY_MAX_RANK};
    for (int i = 0; i < ENN_ARRAY_MAX_RANK; i++) a.shape[i] = i == 3 ? 3 : 1;
    float v[3] = {1, 2, 3};
    a.data = v;
    ENN_ASSERT_OK(enn_npy_write(test_path(s.path, s.dir, "r32.npy"), &a));
    enn_array b;
    ENN_ASSERT_OK(enn_npy_read(s.path, ENN_DTYPE_ANY, &b));
    cr_assert_eq(b.rank, ENN_ARRAY_MAX_RANK);
    cr_assert_eq(b.shape[3], 3);
    cr_assert_arr_eq(b.data, v, sizeof v);
    enn_array_free(&b);
    /* Zero elements: shape (0, 4). */
    enn_array e = {.dtype = ENN_DTYPE_I32, .rank = 2, .shape = {0, 4}};
    ENN_ASSERT_OK(enn_npy_write(test_path(s.path, s.dir, "empty.npy"), &e));
    ENN_ASSERT_OK(enn_npy_read(s.path, ENN_DTYPE_ANY, &b));
    cr_assert_eq(b.rank, 2);
    cr_assert_eq(enn_array_count(&b), 0);
    enn_array_free(&b);
    /* A gzip-compressed .npy reads too. */
    test_write_gz(test_path(s.path, s.dir, "f4.npy.gz"), npy_f4_2x3, NPY_F4_2X3_LEN);
    ENN_ASSERT_OK(enn_npy_read(s.path, ENN_DTYPE_ANY, &b));
    cr_assert_eq(((float *)b.data)[5], 1.5f);
    enn_array_free(&b);
    test_tmpdir_remove(s.dir);
}

/* A copy of a numpy file with `find` overwritten by `repl` in the header (a longer repl
 * runs into the header's padding spaces). */
static void patched(char *out, const char *file, size_t n, const char *find, const char *repl)
{
    memcpy(out, file, n);
    size_t flen = strlen(find);
    char *at = NULL;
    for (size_t i = 0; !at && i + flen <= 128; i++)
        if (memcmp(out + i, find, flen) == 0) at = out + i;
    cr_assert_not_null(at, "'%s' not in the header", find);
    memcpy(at, repl, strlen(repl));
}

static void expect_npy_error(scratch *s, const char *name, const void *bytes, size_t n, const char *problem)
{
    enn_array a;
    memset(&a, 0x5a, sizeof a);
    test_expect_error(enn_npy_read(put(s, name, bytes, n), ENN_DTYPE_ANY, &a), ENN_ERROR_FORMAT, name, problem);
    cr_assert_null(a.data);
}

Test(data_npy, malformed_files_are_rejected)
{
    scratch s;
    test_tmpdir(s.dir);
    char buf[512];
    expect_npy_error(&s, "empty.npy", "", 0, "empty file");
    expect_npy_error(&s, "zip.npy", "PK\x03\x04\x14\x00\x00\x00", 8, "this is a .npz (a zip of .npy arrays");
    expect_npy_error(&s, "text.npy", "# not an array\n", 15, "not a .npy file: wrong magic");
    expect_npy_error(&s, "short.npy", "\x93NUMPY\x01", 7, "truncated");
    expect_npy_error(&s, "cut-header.npy", npy_f4_2x3, 60, "truncated: the .npy header claims 118 bytes");
    expect_npy_error(&s, "cut-data.npy", npy_f4_2x3, NPY_F4_2X3_LEN - 4,
                     "truncated: header says shape (2, 3) of <f4 (24 bytes of data) but the file holds 20");
    memcpy(buf, npy_f4_2x3, NPY_F4_2X3_LEN);
    memset(buf + NPY_F4_2X3_LEN, 0, 3);
    expect_npy_error(&s, "long.npy", buf, NPY_F4_2X3_LEN + 3, "3 trailing bytes");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "(2, 3)", "(2, 4)");
    expect_npy_error(&s, "wrong-shape.npy", buf, NPY_F4_2X3_LEN, "truncated: header says shape (2, 4)");
    expect_npy_error(&s, "fortran.npy", npy_fortran_2x3, NPY_FORTRAN_2X3_LEN, "fortran_order is True");
    expect_npy_error(&s, "complex.npy", npy_c8_1, NPY_C8_1_LEN, "dtype '<c8' is not supported");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "\x01\x00v", "\x04\x00v");
    expect_npy_error(&s, "v4.npy", buf, NPY_F4_2X3_LEN, "unsupported .npy format version 4.0");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "'shape'", "'shapf'");
    expect_npy_error(&s, "key.npy", buf, NPY_F4_2X3_LEN, "unexpected key 'shapf'");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "False", "Fals ");
    expect_npy_error(&s, "bool.npy", buf, NPY_F4_2X3_LEN, "'fortran_order' is neither True nor False");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "(2, 3)", "(2, x)");
    expect_npy_error(&s, "shape.npy", buf, NPY_F4_2X3_LEN, "malformed .npy header");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "(2, 3)", "(2  3)");
    expect_npy_error(&s, "open-shape.npy", buf, NPY_F4_2X3_LEN, "'shape' tuple is not closed");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "'<f4'", "[('a'");
    expect_npy_error(&s, "struct.npy", buf, NPY_F4_2X3_LEN, "'descr' is a structured dtype (not supported)");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "'fortran_order'", "'descr'        ");
    expect_npy_error(&s, "twice.npy", buf, NPY_F4_2X3_LEN, "'descr' given twice");
    patched(buf, npy_f4_2x3, NPY_F4_2X3_LEN, "(2, 3)", "(9999999999999999999999, 3), }");
    expect_npy_error(&s, "huge.npy", buf, NPY_F4_2X3_LEN, "overflows");
    /* A gzip .npy cut short. */
    test_write_gz(test_path(s.path, s.dir, "whole.npy.gz"), npy_f4_2x3, NPY_F4_2X3_LEN);
    unsigned char *gz;
    size_t n = test_read_file(s.path, &gz);
    expect_npy_error(&s, "cut.npy.gz", gz, n - 12, "truncated gzip stream");
    free(gz);
    test_tmpdir_remove(s.dir);
}

Test(data_npy, write_failures_name_the_file)
{
    scratch s;
    test_tmpdir(s.dir);
    float v = 1;
    enn_array a = {.dtype = ENN_DTYPE_F32, .rank = 1, .shape = {1}, .data = &v};
    test_expect_error(enn_npy_write(test_path(s.path, s.dir, "missing-dir/x.npy"), &a), ENN_ERROR_IO, "missing-dir/x.npy",
                      "cannot create a temporary file");
    a.rank = ENN_ARRAY_MAX_RANK + 1;
    test_expect_error(enn_npy_write(test_path(s.path, s.dir, "deep.npy"), &a), ENN_ERROR_INVALID_ARGUMENT, "deep.npy",
                      "rank 33");
    a.rank = 1;
    a.dtype = ENN_DTYPE_ANY;
    test_expect_error(enn_npy_write(test_path(s.path, s.dir, "any.npy"), &a), ENN_ERROR_INVALID_ARGUMENT, "any.npy",
                      "is not a dtype");
    test_tmpdir_remove(s.dir);
}

Test(data_npy, pairs_make_datasets)
{
    scratch s;
    test_tmpdir(s.dir);
    char xp[TEST_PATH_MAX], yp[TEST_PATH_MAX];
    float x[2 * 3 * 2];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(xp, s.dir, "x.npy"), x, 3, (uint64_t[]){2, 3, 2}));
    int64_t labels[2] = {4, 1};
    enn_array l = {.dtype = ENN_DTYPE_I64, .rank = 1, .shape = {2}, .data = labels};
    ENN_ASSERT_OK(enn_npy_write(test_path(yp, s.dir, "labels.npy"), &l));
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_npy_pair(xp, yp, &ds));
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(ds.T, 3);
    cr_assert_eq(ds.d, 2);
    cr_assert_arr_eq(ds.x, x, sizeof x);
    cr_assert_eq(ds.labels[0], 4);
    cr_assert_eq(ds.labels[1], 1);
    cr_assert_eq(ds.num_classes, 5);
    enn_dataset_free(&ds);
    double y[2 * 2] = {0.5, -1, 2, 3};
    enn_array ya = {.dtype = ENN_DTYPE_F64, .rank = 2, .shape = {2, 2}, .data = y};
    ENN_ASSERT_OK(enn_npy_write(test_path(yp, s.dir, "y.npy"), &ya));
    ENN_ASSERT_OK(enn_load_npy_pair(xp, yp, &ds));
    cr_assert_eq(ds.k, 2);
    cr_assert_null(ds.labels);
    for (int i = 0; i < 4; i++) cr_assert_eq(ds.y[i], (float)y[i]);
    enn_dataset_free(&ds);
    /* Wrong shapes: x of rank 2; y with 3 rows for 2 samples. */
    test_expect_error(enn_load_npy_pair(yp, NULL, &ds), ENN_ERROR_FORMAT, "y.npy", "wrong shape (2, 2)");
    double y3[3] = {1, 2, 3};
    enn_array y3a = {.dtype = ENN_DTYPE_F64, .rank = 1, .shape = {3}, .data = y3};
    ENN_ASSERT_OK(enn_npy_write(test_path(yp, s.dir, "y3.npy"), &y3a));
    test_expect_error(enn_load_npy_pair(xp, yp, &ds), ENN_ERROR_FORMAT, "y3.npy", "wrong shape (3,)");
    cr_assert_null(ds.x);
    /* Values a model cannot train on: a NaN feature, an infinite target, a label too
     * large to count classes with, no steps. */
    char bp[TEST_PATH_MAX];
    x[7] = NAN;
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(bp, s.dir, "x-nan.npy"), x, 3, (uint64_t[]){2, 3, 2}));
    test_expect_error(enn_load_npy_pair(bp, NULL, &ds), ENN_ERROR_FORMAT, "x-nan.npy",
                      "element 7 (sample 1, step 0, feature 1) is nan");
    x[7] = 7.0f;
    y[3] = INFINITY;
    ENN_ASSERT_OK(enn_npy_write(test_path(yp, s.dir, "y-inf.npy"), &ya));
    test_expect_error(enn_load_npy_pair(xp, yp, &ds), ENN_ERROR_FORMAT, "y-inf.npy", "element 3 (sample 1) is inf");
    labels[1] = 0xffffffffll;
    ENN_ASSERT_OK(enn_npy_write(test_path(yp, s.dir, "labels-huge.npy"), &l));
    test_expect_error(enn_load_npy_pair(xp, yp, &ds), ENN_ERROR_FORMAT, "labels-huge.npy", "label 1 is 4294967295");
    ENN_ASSERT_OK(enn_npy_write_f32(test_path(bp, s.dir, "x-no-steps.npy"), x, 3, (uint64_t[]){2, 0, 2}));
    test_expect_error(enn_load_npy_pair(bp, NULL, &ds), ENN_ERROR_FORMAT, "x-no-steps.npy", "no steps (T = 0)");
    test_tmpdir_remove(s.dir);
}
