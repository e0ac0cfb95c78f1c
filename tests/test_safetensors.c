/* The safetensors reader and writer: round trips, Python interoperability, and every
 * kind of malformed file rejected with a message that names the file and the problem. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "harness.h"
#include "io/safetensors.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/enn-st-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void write_sample(const char *path, float *w, int32_t *ids)
{
    for (int i = 0; i < 12; i++) w[i] = (float)i * 0.5f - 1.0f;
    for (int i = 0; i < 5; i++) ids[i] = 7 * i - 3;
    enn_st_tensor t[2] = {
        {.name = "W_z", .dtype = ENN_ST_F32, .rank = 2, .shape = {3, 4}, .data = w},
        {.name = "labels", .dtype = ENN_ST_I32, .rank = 1, .shape = {5}, .data = ids},
    };
    enn_st_meta m[2] = {{"format", "enn"}, {"config", "{\"h\": 4}"}};
    ENN_ASSERT_OK(enn_safetensors_write(path, t, 2, m, 2));
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    char *buf = malloc(*n + 1);
    cr_assert_eq(fread(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

Test(safetensors, round_trip)
{
    make_dir();
    char path[128];
    path_in(path, sizeof path, "a.safetensors");
    float w[12];
    int32_t ids[5];
    write_sample(path, w, ids);
    enn_safetensors *st = NULL;
    ENN_ASSERT_OK(enn_safetensors_read(path, &st));
    cr_assert_eq(enn_safetensors_count(st), 2);
    const enn_st_tensor *t = enn_safetensors_find(st, "W_z");
    cr_assert_not_null(t);
    cr_assert_eq(t->dtype, ENN_ST_F32);
    cr_assert_eq(t->rank, 2);
    cr_assert_eq(t->shape[0], 3);
    cr_assert_eq(t->shape[1], 4);
    cr_assert_eq(memcmp(t->data, w, sizeof w), 0);
    t = enn_safetensors_find(st, "labels");
    cr_assert_eq(memcmp(t->data, ids, sizeof ids), 0);
    cr_assert_str_eq(enn_safetensors_meta(st, "format"), "enn");
    cr_assert_str_eq(enn_safetensors_meta(st, "config"), "{\"h\": 4}");
    cr_assert_null(enn_safetensors_meta(st, "absent"));
    enn_safetensors_free(st);
}

/* Names and metadata in any UTF-8 (two-, three- and four-byte sequences) go through. */
Test(safetensors, utf8_names_and_metadata)
{
    make_dir();
    char path[128];
    path_in(path, sizeof path, "u.safetensors");
    float w[2] = {1.5f, -2.0f};
    const char *name = "caf\xc3\xa9.\xe6\x97\xa5.\xf0\x9f\x98\x80", *note = "\xce\xbb=\xf4\x8f\xbf\xbf";
    enn_st_tensor t = {.name = name, .dtype = ENN_ST_F32, .rank = 1, .shape = {2}, .data = w};
    enn_st_meta m = {"\xc3\xbc", note};
    ENN_ASSERT_OK(enn_safetensors_write(path, &t, 1, &m, 1));
    enn_safetensors *st = NULL;
    ENN_ASSERT_OK(enn_safetensors_read(path, &st));
    const enn_st_tensor *back = enn_safetensors_find(st, name);
    cr_assert_not_null(back);
    cr_assert_eq(memcmp(back->data, w, sizeof w), 0);
    cr_assert_str_eq(enn_safetensors_meta(st, "\xc3\xbc"), note);
    enn_safetensors_free(st);
}

/* Two writers of one path at once (two threads, or two processes that happen to share a
 * pid in different namespaces): each save succeeds and a reader meanwhile always finds
 * one whole file, one writer's or the other's. A temporary name made from the pid alone
 * was shared by both writers: saves failed and readers found torn files. */
enum { RACE_FLOATS = 1 << 15, RACE_ROUNDS = 60 };

typedef struct race_writer {
    const char *path;
    float value;
    int failures;
    char first_error[256];
} race_writer;

static void *race_write(void *arg)
{
    race_writer *w = arg;
    float *data = malloc(RACE_FLOATS * sizeof *data);
    for (int i = 0; i < RACE_FLOATS; i++) data[i] = w->value;
    enn_st_tensor t = {.name = "w", .dtype = ENN_ST_F32, .rank = 1, .shape = {RACE_FLOATS}, .data = data};
    for (int r = 0; r < RACE_ROUNDS; r++)
        if (enn_safetensors_write(w->path, &t, 1, NULL, 0) != ENN_OK && !w->failures++)
            snprintf(w->first_error, sizeof w->first_error, "%s", enn_last_error());
    free(data);
    return NULL;
}

Test(safetensors, concurrent_writers_replace_the_file_whole)
{
    make_dir();
    char path[128];
    path_in(path, sizeof path, "same.safetensors");
    race_writer w[2] = {{.path = path, .value = 1.0f}, {.path = path, .value = 2.0f}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) cr_assert_eq(pthread_create(&threads[i], NULL, race_write, &w[i]), 0);
    int reads = 0, torn = 0;
    char problem[512] = "";
    for (int r = 0; r < 4 * RACE_ROUNDS; r++) {
        enn_safetensors *st = NULL;
        if (access(path, F_OK) != 0) continue; /* before the first rename */
        if (enn_safetensors_read(path, &st) != ENN_OK) {
            if (!torn++) snprintf(problem, sizeof problem, "%s", enn_last_error());
            continue;
        }
        const enn_st_tensor *got = enn_safetensors_find(st, "w");
        const float *v = got ? got->data : NULL;
        int whole = v && got->shape[0] == RACE_FLOATS && (v[0] == 1.0f || v[0] == 2.0f);
        for (int i = 1; whole && i < RACE_FLOATS; i++) whole = v[i] == v[0];
        if (!whole && !torn++) snprintf(problem, sizeof problem, "a file of neither writer");
        reads++;
        enn_safetensors_free(st);
    }
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 2; i++)
        cr_expect_eq(w[i].failures, 0, "writer %d: %d of %d saves failed, the first: %s", i, w[i].failures,
                     RACE_ROUNDS, w[i].first_error);
    cr_expect_eq(torn, 0, "%d of %d reads found a torn file, the first: %s", torn, reads + torn, problem);
    /* And no temporary file is left behind. */
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    cr_expect_eq(files, 1, "%d files in %s after the saves, not just the checkpoint", files, dir);
}

/* Whether another open file description can take the lock of `path` now. */
static int lock_is_free(const char *path)
{
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0, "cannot open %s", path);
    int free_now = flock(fd, LOCK_EX | LOCK_NB) == 0;
    cr_assert(free_now || errno == EWOULDBLOCK, "flock %s: %s", path, strerror(errno));
    close(fd);
    return free_now;
}

/* enn train's start removes the temporaries of killed writers and leaves the locked ones
 * of live writers: a writer holds its temporary locked until it is renamed or removed. */
Test(safetensors, temporary_is_locked_while_written)
{
    char dir[] = "/tmp/enn-st-lock-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/file.bin", dir);
    for (int commit = 0; commit < 2; commit++) {
        enn_atomic_file af;
        ENN_ASSERT_OK(enn_atomic_open(&af, path));
        ENN_ASSERT_OK(enn_atomic_write(&af, "data", 4));
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%s", af.tmp_path);
        cr_expect_not(lock_is_free(tmp), "%s is not locked while it is written", tmp);
        if (commit) {
            ENN_ASSERT_OK(enn_atomic_commit(&af));
            cr_expect(lock_is_free(path), "the committed file stays locked");
        } else {
            enn_atomic_abort(&af);
        }
        cr_expect_neq(access(tmp, F_OK), 0, "%s is left behind", tmp);
    }
    unlink(path);
    rmdir(dir);
}

Test(safetensors, opens_in_python)
{
    if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0)
        cr_skip_test("python3 with numpy is not installed");
    make_dir();
    char path[128], cmd[512];
    path_in(path, sizeof path, "py.safetensors");
    float w[12];
    int32_t ids[5];
    write_sample(path, w, ids);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/python/read_safetensors.py %s", ENN_SOURCE_DIR, path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[2048] = {0};
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "python failed: %s", out);
    /* Sums computed here independently of the writer. */
    double wsum = 0, isum = 0;
    for (int i = 0; i < 12; i++) wsum += w[i];
    for (int i = 0; i < 5; i++) isum += ids[i];
    char want[256];
    snprintf(want, sizeof want, "tensor W_z F32 [3, 4] %.9g", wsum);
    cr_assert_not_null(strstr(out, want), "missing \"%s\" in:\n%s", want, out);
    snprintf(want, sizeof want, "tensor labels I32 [5] %.9g", isum);
    cr_assert_not_null(strstr(out, want), "missing \"%s\" in:\n%s", want, out);
    cr_assert_not_null(strstr(out, "meta format=enn"), "%s", out);
}

/* Writes `bytes` as a file, reads it, and expects `status` with `needle` in the message. */
static void expect_rejected(const char *name, const void *bytes, size_t n, enn_status status, const char *needle)
{
    char path[128];
    path_in(path, sizeof path, name);
    write_bytes(path, bytes, n);
    enn_safetensors *st = (enn_safetensors *)0x1;
    enn_status s = enn_safetensors_read(path, &st);
    cr_assert_eq(s, status, "%s: got %s (%s)", name, enn_status_name(s), enn_last_error());
    cr_assert_null(st);
    cr_assert_not_null(strstr(enn_last_error(), path), "message does not name the file: %s", enn_last_error());
    cr_assert_not_null(strstr(enn_last_error(), needle), "message lacks \"%s\": %s", needle, enn_last_error());
}

static size_t with_header(char *out, const char *json, size_t data_bytes)
{
    uint64_t n = strlen(json);
    for (int i = 0; i < 8; i++) out[i] = (char)(n >> (8 * i));
    memcpy(out + 8, json, n);
    memset(out + 8 + n, 0x3f, data_bytes);
    return 8 + n + data_bytes;
}

Test(safetensors, rejects_malformed_files)
{
    make_dir();
    char good[128];
    path_in(good, sizeof good, "good.safetensors");
    float w[12];
    int32_t ids[5];
    write_sample(good, w, ids);
    size_t n;
    char *bytes = read_all(good, &n);
    expect_rejected("empty", "", 0, ENN_ERROR_FORMAT, "too short");
    expect_rejected("truncated", bytes, n - 3, ENN_ERROR_FORMAT, "truncated");
    expect_rejected("header-cut", bytes, 20, ENN_ERROR_FORMAT, "does not fit");
    char buf[1024];
    size_t m = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]", 8);
    expect_rejected("bad-json", buf, m, ENN_ERROR_FORMAT, "not valid JSON");
    m = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8);
    expect_rejected("size-mismatch", buf, m, ENN_ERROR_FORMAT, "need 12");
    m = with_header(buf, "{\"a\": {\"dtype\": \"Q7\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    expect_rejected("bad-dtype", buf, m, ENN_ERROR_FORMAT, "unsupported dtype Q7");
    m = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                         " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12);
    expect_rejected("overlap", buf, m, ENN_ERROR_FORMAT, "share bytes");
    m = with_header(buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8);
    expect_rejected("negative-shape", buf, m, ENN_ERROR_FORMAT, "malformed");
    m = with_header(buf, "{\"a\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
    expect_rejected("no-dtype", buf, m, ENN_ERROR_FORMAT, "lacks dtype");
    /* Headers jansson refuses for what they are, not for memory: still corrupt files
     * (out of host memory is told apart by jansson's error, errno and a missing message). */
    m = with_header(buf, "        ", 0);
    expect_rejected("blank-header", buf, m, ENN_ERROR_FORMAT, "not valid JSON");
    m = with_header(buf, "{\"caf\xe9\": 1}", 0);
    expect_rejected("latin1-header", buf, m, ENN_ERROR_FORMAT, "not valid JSON");
    m = with_header(buf, "{\"a\": 1}xxxxxxx", 0);
    memset(buf + 8 + 8, 0, 8);   /* NUL bytes after the object */
    expect_rejected("nul-header", buf, m, ENN_ERROR_FORMAT, "not valid JSON");
    enum { DEPTH = 5000 };   /* past jansson's nesting limit (2048) */
    char *deep = malloc(8 + 2 * DEPTH);
    cr_assert_not_null(deep);
    memset(deep + 8, '[', DEPTH);
    memset(deep + 8 + DEPTH, ']', DEPTH);
    for (int i = 0; i < 8; i++) deep[i] = (char)((uint64_t)(2 * DEPTH) >> (8 * i));
    expect_rejected("deep-header", deep, 8 + 2 * DEPTH, ENN_ERROR_FORMAT, "not valid JSON");
    free(deep);
    free(bytes);
    char missing[128];
    path_in(missing, sizeof missing, "does-not-exist.safetensors");
    enn_safetensors *st = NULL;
    cr_assert_eq(enn_safetensors_read(missing, &st), ENN_ERROR_IO);
    cr_assert_not_null(strstr(enn_last_error(), "does-not-exist"));
}

Test(safetensors, failed_write_keeps_previous_file)
{
    make_dir();
    char path[128];
    path_in(path, sizeof path, "keep.safetensors");
    float w[12];
    int32_t ids[5];
    write_sample(path, w, ids);
    size_t n0;
    char *before = read_all(path, &n0);
    /* A repeated name is refused before anything is written. */
    enn_st_tensor bad[2] = {
        {.name = "x", .dtype = ENN_ST_F32, .rank = 1, .shape = {1}, .data = w},
        {.name = "x", .dtype = ENN_ST_F32, .rank = 1, .shape = {1}, .data = w},
    };
    cr_assert_eq(enn_safetensors_write(path, bad, 2, NULL, 0), ENN_ERROR_INVALID_ARGUMENT);
    /* So are names and metadata jansson would refuse (not UTF-8): not mistaken for an
     * allocation failure, and not dropped from a header whose data is written anyway. */
    enn_st_tensor latin1 = {.name = "caf\xe9", .dtype = ENN_ST_F32, .rank = 1, .shape = {1}, .data = w};
    cr_assert_eq(enn_safetensors_write(path, &latin1, 1, NULL, 0), ENN_ERROR_INVALID_ARGUMENT, "%s", enn_last_error());
    cr_assert_not_null(strstr(enn_last_error(), "not UTF-8"), "%s", enn_last_error());
    enn_st_meta overlong[1] = {{"note", "\xc0\xaf"}}, null_value[1] = {{"note", NULL}};
    cr_assert_eq(enn_safetensors_write(path, bad, 1, overlong, 1), ENN_ERROR_INVALID_ARGUMENT, "%s", enn_last_error());
    cr_assert_eq(enn_safetensors_write(path, bad, 1, null_value, 1), ENN_ERROR_INVALID_ARGUMENT, "%s", enn_last_error());
    /* A directory that does not exist: the temporary file cannot be made. */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    cr_assert_eq(enn_safetensors_write(nodir, bad, 1, NULL, 0), ENN_ERROR_IO);
    size_t n1;
    char *after = read_all(path, &n1);
    cr_assert_eq(n0, n1);
    cr_assert_eq(memcmp(before, after, n0), 0);
    free(before);
    free(after);
    /* No temporary files are left behind. */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", dir);
    cr_assert_neq(system(cmd), 0, "a temporary file was left in %s", dir);
}
