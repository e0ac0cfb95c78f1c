/* The on-disk pipeline cache: written when a context is destroyed, loaded by the next
 * context on the same device, and ignored (then rewritten) when the file is damaged in
 * any way. Creation times are printed for information only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "runtime_helpers.h"

#define MAGIC "ENNPCACH"

static char cache_dir[64];

static void make_dir(void)
{
    snprintf(cache_dir, sizeof cache_dir, "/tmp/enn-cache-test-XXXXXX");
    cr_assert_not_null(mkdtemp(cache_dir), "mkdtemp");
}

static void remove_dir(const char *file)
{
    if (file && file[0]) unlink(file);
    rmdir(cache_dir);
}

/* Three pipelines (the elementwise kernel at three local sizes), each run once on
 * y = 2x and checked; returns the context's pipeline statistics. */
static enn_pipeline_stats use_pipelines(enn_context *ctx)
{
    const uint32_t n = 1000, sizes[3] = {32, 64, 128};
    float x[1000], y[1000];
    for (uint32_t i = 0; i < n; i++) x[i] = (float)i - 500.0f;
    enn_buffer *bx, *by;
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof x, &bx));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &by));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bx, 0, x, sizeof x));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    for (int k = 0; k < 3; k++) {
        const enn_pipeline *p;
        enn_pipeline_desc d = {.shader = "elementwise", .num_buffers = 2, .push_size = sizeof(test_axpby_push),
                               .spec = &sizes[k], .spec_count = 1};
        ENN_ASSERT_OK(enn_pipeline_get(ctx, &d, &p));
        test_axpby_push push = {n, 0, 2.0f, 0.0f};
        enn_binding b[2] = {ENN_IN(bx), ENN_OUT(by)};
        ENN_ASSERT_OK(enn_recorder_begin(rec));
        ENN_ASSERT_OK(enn_record_fill(rec, by, 0, 0, 0));
        ENN_ASSERT_OK(enn_record_dispatch(rec, p, b, 2, &push, (n + sizes[k] - 1) / sizes[k], 1, 1, "axpby"));
        ENN_ASSERT_OK(enn_recorder_run(rec));
        ENN_ASSERT_OK(enn_buffer_download(ctx, by, 0, y, sizeof y));
        for (uint32_t i = 0; i < n; i++) cr_assert_eq(y[i], 2.0f * x[i], "local size %u: y[%u]", sizes[k], i);
    }
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, bx);
    enn_buffer_destroy(ctx, by);
    enn_pipeline_stats st;
    enn_pipeline_get_stats(ctx, &st);
    cr_assert_eq(st.created, 3);
    return st;
}

/* A context on cache_dir; runs the pipelines; returns cache_loaded and the file path. */
static int run_context(const char *label, char *path, size_t path_size)
{
    enn_context_options opt = {.cache_dir = cache_dir};
    enn_context *ctx = test_context_with(&opt);
    enn_pipeline_stats st = use_pipelines(ctx);
    cr_log_info("%s: cache_loaded %d, %u pipelines created in %.2f ms", label, st.cache_loaded, st.created,
                st.create_ms);
    printf("pipeline cache, %s: %u pipelines in %.2f ms\n", label, st.created, st.create_ms);
    if (path) snprintf(path, path_size, "%s", st.cache_path);
    test_context_finish(ctx); /* saves the cache */
    return st.cache_loaded;
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void expect_valid_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "no cache file at %s", path);
    char magic[8] = {0};
    size_t got = fread(magic, 1, 8, f);
    fclose(f);
    cr_assert_eq(got, 8);
    cr_assert_eq(memcmp(magic, MAGIC, 8), 0, "the cache file does not start with " MAGIC);
    cr_assert_gt(file_size(path), 8 + 32, "the cache file holds no data (%ld bytes)", file_size(path));
}

Test(runtime_cache, written_then_loaded)
{
    make_dir();
    char path[512];
    cr_expect_eq(run_context("first context (empty cache)", path, sizeof path), 0, "an empty directory gave a cache");
    cr_assert_eq(strncmp(path, cache_dir, strlen(cache_dir)), 0, "cache path %s is not under %s", path, cache_dir);
    expect_valid_file(path);
    cr_expect_eq(run_context("second context (cache loaded)", NULL, 0), 1, "the saved cache was not loaded");
    expect_valid_file(path);
    remove_dir(path);
}

typedef enum { FLIP_DATA, FLIP_HEADER_FIELD, TRUNCATE_HALF, TRUNCATE_HEADER, WRONG_MAGIC, TRAILING_BYTES,
               EMPTY } damage;

static void damage_file(const char *path, damage how)
{
    long size = file_size(path);
    cr_assert_gt(size, 64);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    unsigned char byte;
    switch (how) {
    case FLIP_DATA: /* two bytes of the driver's data (the header is the first 56 bytes) */
    case FLIP_HEADER_FIELD: { /* a byte inside the header, after the magic (device ids) */
        long at[2] = {how == FLIP_DATA ? size * 3 / 4 : 13, size - 1};
        for (int k = 0; k < (how == FLIP_DATA ? 2 : 1); k++) {
            cr_assert_eq(fseek(f, at[k], SEEK_SET), 0);
            cr_assert_eq(fread(&byte, 1, 1, f), 1);
            byte ^= 0x5a;
            cr_assert_eq(fseek(f, at[k], SEEK_SET), 0);
            cr_assert_eq(fwrite(&byte, 1, 1, f), 1);
        }
        break;
    }
    case TRUNCATE_HALF: cr_assert_eq(ftruncate(fileno(f), size / 2), 0); break;
    case TRUNCATE_HEADER: cr_assert_eq(ftruncate(fileno(f), 12), 0); break;
    case WRONG_MAGIC: cr_assert_eq(fwrite("NOTACACH", 1, 8, f), 8); break;
    case TRAILING_BYTES:
        cr_assert_eq(fseek(f, 0, SEEK_END), 0);
        cr_assert_eq(fwrite("garbage!", 1, 8, f), 8);
        break;
    case EMPTY: cr_assert_eq(ftruncate(fileno(f), 0), 0); break;
    }
    cr_assert_eq(fclose(f), 0);
}

static void damaged(damage how, const char *what)
{
    make_dir();
    char path[512];
    run_context("making the cache", path, sizeof path);
    expect_valid_file(path);
    damage_file(path, how);
    char label[128];
    snprintf(label, sizeof label, "after %s", what);
    cr_expect_eq(run_context(label, NULL, 0), 0, "a cache file with %s was loaded", what);
    expect_valid_file(path);
    cr_expect_eq(run_context("after the rewrite", NULL, 0), 1, "the rewritten cache (after %s) was not loaded", what);
    remove_dir(path);
}

Test(runtime_cache, flipped_data_bytes) { damaged(FLIP_DATA, "flipped data bytes"); }
Test(runtime_cache, flipped_header_field) { damaged(FLIP_HEADER_FIELD, "a changed header field"); }
Test(runtime_cache, truncated_data) { damaged(TRUNCATE_HALF, "half its bytes"); }
Test(runtime_cache, truncated_header) { damaged(TRUNCATE_HEADER, "a truncated header"); }
Test(runtime_cache, wrong_magic) { damaged(WRONG_MAGIC, "a wrong magic"); }
Test(runtime_cache, trailing_bytes) { damaged(TRAILING_BYTES, "bytes appended"); }
Test(runtime_cache, empty_file) { damaged(EMPTY, "no bytes"); }

/* Two contexts open at once on one cache directory: the second to close merges the file
 * the first saved into its own cache (vkMergePipelineCaches) before writing, and the
 * result loads. (lavapipe's cache holds no pipelines, so only the path and its validity
 * are checked here; on GPUs the merge keeps the other process's pipelines.) */
Test(runtime_cache, overlapping_contexts_merge)
{
    make_dir();
    enn_context_options opt = {.cache_dir = cache_dir};
    enn_context *first = test_context_with(&opt), *second = test_context_with(&opt);
    use_pipelines(first);
    use_pipelines(second);
    enn_pipeline_stats st;
    enn_pipeline_get_stats(first, &st);
    char path[600];
    snprintf(path, sizeof path, "%s", st.cache_path);
    test_context_finish(first);
    expect_valid_file(path);
    test_context_finish(second);
    expect_valid_file(path);
    cr_expect_eq(run_context("after two contexts", NULL, 0), 1, "the merged cache was not loaded");
    remove_dir(path);
}

/* A FIFO where the cache file should be is passed over, not opened (opening it blocks
 * until a writer comes); the new cache replaces it. The test has a time limit: a hang
 * fails it. */
Test(runtime_cache, fifo_in_place_of_the_file, .timeout = 120)
{
    make_dir();
    char path[512];
    run_context("making the cache", path, sizeof path);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo %s", path);
    cr_expect_eq(run_context("with a FIFO as the file", NULL, 0), 0, "something was loaded from a FIFO");
    expect_valid_file(path);
    remove_dir(path);
}

/* A missing nested directory is created; "" turns the disk cache off. */
Test(runtime_cache, nested_dir_created_and_empty_dir_disables)
{
    make_dir();
    char nested[128];
    snprintf(nested, sizeof nested, "%s/a/b", cache_dir);
    enn_context_options opt = {.cache_dir = nested};
    enn_context *ctx = test_context_with(&opt);
    enn_pipeline_stats st = use_pipelines(ctx);
    char path[512];
    snprintf(path, sizeof path, "%s", st.cache_path);
    test_context_finish(ctx);
    expect_valid_file(path);
    unlink(path);
    char sub[160];
    snprintf(sub, sizeof sub, "%s/a/b", cache_dir);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/a", cache_dir);
    rmdir(sub);

    opt.cache_dir = "";
    ctx = test_context_with(&opt);
    st = use_pipelines(ctx);
    cr_expect_eq(st.cache_path[0], '\0', "cache_dir \"\" still has a cache path: %s", st.cache_path);
    cr_expect_eq(st.cache_loaded, 0);
    test_context_finish(ctx);
    remove_dir(NULL);
}

/* A cache that cannot be written (its directory is a regular file) costs nothing: the
 * context works and is destroyed cleanly. */
Test(runtime_cache, unwritable_dir_is_harmless)
{
    make_dir();
    char blocker[128];
    snprintf(blocker, sizeof blocker, "%s/file", cache_dir);
    FILE *f = fopen(blocker, "w");
    cr_assert_not_null(f);
    fclose(f);
    enn_context_options opt = {.cache_dir = blocker};
    enn_context *ctx = test_context_with(&opt);
    enn_pipeline_stats st = use_pipelines(ctx);
    cr_expect_eq(st.cache_loaded, 0);
    test_context_finish(ctx);
    remove_dir(blocker);
}

/* A directory name too long for the cache path is not shortened into some other
 * directory: nothing at all is written under the test directory. */
Test(runtime_cache, overlong_dir_writes_nothing_elsewhere)
{
    make_dir();
    char longdir[700];
    int n = snprintf(longdir, sizeof longdir, "%s", cache_dir);
    while (n < 600) n += snprintf(longdir + n, sizeof longdir - n, "/abcdefghi"); /* short names: mkdir-able */
    enn_context_options opt = {.cache_dir = longdir};
    enn_context *ctx = test_context_with(&opt);
    enn_pipeline_stats st = use_pipelines(ctx);
    cr_expect_eq(st.cache_loaded, 0);
    test_context_finish(ctx);
    cr_expect_eq(rmdir(cache_dir), 0, "%s is not empty: a shortened cache path was written", cache_dir);
}
