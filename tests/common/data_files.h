/* Temporary directories and files for the data-loader tests, and the check that a
 * loader failed with the right status and a message naming the file and the problem. */
#ifndef ENN_TEST_DATA_FILES_H
#define ENN_TEST_DATA_FILES_H

#include <stddef.h>

#include "harness.h"

#define TEST_PATH_MAX 512

/* A fresh directory under $TMPDIR (or /tmp); fails the test if it cannot be made. */
void test_tmpdir(char dir[TEST_PATH_MAX]);
/* Removes the files in dir (flat) and dir itself. */
void test_tmpdir_remove(const char *dir);
/* dir/name into out; returns out. */
char *test_path(char out[TEST_PATH_MAX], const char *dir, const char *name);
void test_write_file(const char *path, const void *data, size_t n);
/* gzip-compressed (zlib's gzwrite). */
void test_write_gz(const char *path, const void *data, size_t n);
/* Reads a whole file into *data (malloc'ed); returns its size. */
size_t test_read_file(const char *path, unsigned char **data);

/* Asserts status == want and that enn_last_error() contains `file` and `problem`. */
void test_expect_error(enn_status status, enn_status want, const char *file, const char *problem);

#endif
