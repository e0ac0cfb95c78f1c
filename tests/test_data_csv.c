/* CSV regression data: values, header handling, target columns, and errors that give
 * the line and the field. */
#include <string.h>

#include "data_files.h"
#include "enn_data.h"

static const char *write_text(char path[TEST_PATH_MAX], const char *dir, const char *name, const char *text)
{
    test_write_file(test_path(path, dir, name), text, strlen(text));
    return path;
}

Test(data_csv, header_targets_and_steps)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    /* 3 rows: y0, a, b, c, d, y1; T = 2 steps of d = 2. CRLF, blank lines, spaces. */
    write_text(path, dir, "reg.csv",
               "target,a,b,c,d,other\r\n"
               "1.5, 1, 2, 3, 4, -1\r\n"
               "\r\n"
               "-2e3,5,6,7,8,0.25\n"
               "0,\"9\",10,11,12,1e-3\n");
    enn_csv_options opt = {.header = 1, .target_columns = (const int[]){0, -1}, .target_count = 2, .T = 2};
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_csv(path, &opt, &ds));
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(ds.T, 2);
    cr_assert_eq(ds.d, 2);
    cr_assert_eq(ds.k, 2);
    for (int i = 0; i < 12; i++) cr_assert_eq(ds.x[i], (float)(i + 1));
    const float y[6] = {1.5f, -1.0f, -2000.0f, 0.25f, 0.0f, 1e-3f};
    cr_assert_arr_eq(ds.y, y, sizeof y);
    enn_dataset_free(&ds);
    /* Header detected (-1), default target = last column, T = 1. */
    ENN_ASSERT_OK(enn_load_csv(path, NULL, &ds));
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(ds.T, 1);
    cr_assert_eq(ds.d, 5);
    cr_assert_eq(ds.x[0], 1.5f);
    cr_assert_eq(ds.y[2], 1e-3f);
    enn_dataset_free(&ds);
    /* No header: the first line is data. Semicolons, gzip. */
    const char *plain = "1;2\n3;4\n";
    test_write_gz(test_path(path, dir, "plain.csv.gz"), plain, strlen(plain));
    enn_csv_options semi = {.header = -1, .delimiter = ';'};
    ENN_ASSERT_OK(enn_load_csv(path, &semi, &ds));
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(ds.x[1], 3.0f);
    cr_assert_eq(ds.y[1], 4.0f);
    enn_dataset_free(&ds);
    test_tmpdir_remove(dir);
}

/* MNIST as CSV (the common Kaggle form): a header, the class id first, then the pixels,
 * read as labels and T rows of pixels. */
Test(data_csv, class_labels_from_a_column)
{
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    write_text(path, dir, "mnist.csv",
               "label,1x1,1x2,2x1,2x2\n"
               "7,0,255,128,1\n"
               "0,3,4,5,6\n"
               "2,10,20,30,40\n");
    enn_csv_options opt = {.header = -1, .target_columns = (const int[]){0}, .target_count = 1, .labels = 1, .T = 2};
    enn_dataset ds;
    ENN_ASSERT_OK(enn_load_csv(path, &opt, &ds));
    cr_assert(ds.n == 3 && ds.T == 2 && ds.d == 2 && ds.labels && !ds.y, "n %zu T %u d %u", ds.n, ds.T, ds.d);
    const uint32_t labels[3] = {7, 0, 2};
    cr_expect_arr_eq(ds.labels, labels, sizeof labels);
    cr_expect_eq(ds.num_classes, 8, "the largest label + 1");
    const float x[12] = {0, 255, 128, 1, 3, 4, 5, 6, 10, 20, 30, 40};
    cr_expect_arr_eq(ds.x, x, sizeof x);
    enn_dataset_free(&ds);
    /* A label that is no class id, and labels from two columns, are refused by name. */
    write_text(path, dir, "half.csv", "1.5,2,3\n");
    memset(&ds, 0x5a, sizeof ds);
    test_expect_error(enn_load_csv(path, &opt, &ds), ENN_ERROR_FORMAT, "half.csv",
                      "row 1: label 1.5 in column 1 is not a class id");
    cr_assert(!ds.x && !ds.labels);
    write_text(path, dir, "neg.csv", "-1,2,3\n");
    test_expect_error(enn_load_csv(path, &opt, &ds), ENN_ERROR_FORMAT, "neg.csv", "label -1");
    enn_csv_options two = {.target_columns = (const int[]){0, 1}, .target_count = 2, .labels = 1};
    test_expect_error(enn_load_csv(path, &two, &ds), ENN_ERROR_INVALID_ARGUMENT, "neg.csv",
                      "class labels come from one column, not 2");
    test_tmpdir_remove(dir);
}

static void expect_csv_error(const char *dir, const char *name, const char *text, const enn_csv_options *opt,
                             enn_status want, const char *problem)
{
    char path[TEST_PATH_MAX];
    test_write_file(test_path(path, dir, name), text, strlen(text));
    enn_dataset ds;
    memset(&ds, 0x5a, sizeof ds);
    test_expect_error(enn_load_csv(path, opt, &ds), want, name, problem);
    cr_assert_null(ds.x);
    cr_assert_null(ds.y);
}

Test(data_csv, malformed_files_are_rejected)
{
    char dir[TEST_PATH_MAX];
    test_tmpdir(dir);
    expect_csv_error(dir, "empty.csv", "", NULL, ENN_ERROR_FORMAT, "empty file");
    expect_csv_error(dir, "header-only.csv", "a,b\n", NULL, ENN_ERROR_FORMAT, "no rows of numbers after the header");
    expect_csv_error(dir, "ragged.csv", "a,b,c\n1,2,3\n4,5\n", NULL, ENN_ERROR_FORMAT,
                     "ragged.csv:3: ragged row: 2 fields, but the header (line 1) has 3");
    expect_csv_error(dir, "ragged2.csv", "1,2,3\n\n4,5,6,7\n", NULL, ENN_ERROR_FORMAT,
                     "ragged2.csv:3: ragged row: 4 fields, but the first row has 3");
    expect_csv_error(dir, "word.csv", "1,2\n3,abc\n", NULL, ENN_ERROR_FORMAT, "word.csv:2: field 2 'abc' is not a (finite) number");
    expect_csv_error(dir, "blank-field.csv", "1,2\n3,\n", NULL, ENN_ERROR_FORMAT, "blank-field.csv:2: field 2 '' is not");
    expect_csv_error(dir, "nan.csv", "1,2\nnan,4\n", NULL, ENN_ERROR_FORMAT, "nan.csv:2: field 1 'nan'");
    /* Finite as a double, infinite as the float it becomes. */
    expect_csv_error(dir, "huge.csv", "1,2\n1e300,4\n", NULL, ENN_ERROR_FORMAT, "huge.csv:2: field 1 '1e300'");
    const enn_csv_options no_header = {.header = 0};
    expect_csv_error(dir, "words.csv", "x,y\n1,2\n", &no_header, ENN_ERROR_FORMAT, "words.csv:1: field 1 'x'");
    /* Strings with an embedded NUL: strlen stops there, so write it by hand. */
    char path[TEST_PATH_MAX];
    test_write_file(test_path(path, dir, "nul.csv"), "1,2\n3\0004\n", 8);
    enn_dataset ds;
    test_expect_error(enn_load_csv(path, NULL, &ds), ENN_ERROR_FORMAT, "nul.csv", "not a text file: NUL byte at offset 5");
    const enn_csv_options bad_col = {.header = 0, .target_columns = (const int[]){5}, .target_count = 1};
    expect_csv_error(dir, "cols.csv", "1,2\n", &bad_col, ENN_ERROR_INVALID_ARGUMENT, "target column 5 is outside the 2 columns");
    const enn_csv_options twice = {.header = 0, .target_columns = (const int[]){2, -1}, .target_count = 2};
    expect_csv_error(dir, "twice.csv", "1,2,3\n", &twice, ENN_ERROR_INVALID_ARGUMENT, "chosen twice");
    const enn_csv_options steps = {.header = 0, .T = 2};
    expect_csv_error(dir, "steps.csv", "1,2,3,4\n", &steps, ENN_ERROR_INVALID_ARGUMENT, "3 feature columns");
    test_tmpdir_remove(dir);
}
