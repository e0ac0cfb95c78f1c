#include "data_files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

void test_tmpdir(char dir[TEST_PATH_MAX])
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, TEST_PATH_MAX, "%s/enn-data-XXXXXX", base && base[0] ? base : "/tmp");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp(%s) failed", dir);
}

void test_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[TEST_PATH_MAX];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(test_path(path, dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

char *test_path(char out[TEST_PATH_MAX], const char *dir, const char *name)
{
    snprintf(out, TEST_PATH_MAX, "%s/%s", dir, name);
    return out;
}

void test_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(n ? fwrite(data, 1, n, f) : 0, n, "cannot write %s", path);
    cr_assert_eq(fclose(f), 0);
}

void test_write_gz(const char *path, const void *data, size_t n)
{
    gzFile gz = gzopen(path, "wb");
    cr_assert_not_null(gz, "cannot create %s", path);
    cr_assert_eq(n ? gzwrite(gz, data, (unsigned)n) : 0, (int)n, "cannot write %s", path);
    cr_assert_eq(gzclose(gz), Z_OK);
}

size_t test_read_file(const char *path, unsigned char **data)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    cr_assert_eq(fread(*data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return (size_t)n;
}

void test_expect_error(enn_status status, enn_status want, const char *file, const char *problem)
{
    const char *msg = enn_last_error();
    cr_assert_eq(status, want, "got %s, want %s; message: %s", enn_status_name(status), enn_status_name(want), msg);
    cr_assert(file == NULL || strstr(msg, file) != NULL, "message does not name the file '%s': %s", file, msg);
    cr_assert(problem == NULL || strstr(msg, problem) != NULL, "message does not say '%s': %s", problem, msg);
}
