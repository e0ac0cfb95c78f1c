/* See tool_run.h. */
#include "tool_run.h"

#include <jansson.h>

#include "io/safetensors.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

int test_run_shell(const char *cmd, char **output)
{
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    size_t cap = 1 << 16, len = 0, n;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096) {
            out = realloc(out, cap *= 2);
            cr_assert_not_null(out);
        }
    }
    out[len] = 0;
    int status = pclose(p);
    *output = out;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void test_require_mpirun(void)
{
    if (system("command -v mpirun >/dev/null 2>&1")) cr_skip_test("mpirun is not installed (apt install openmpi-bin)");
    char *out;
    if (test_run_tool("timeout 60 env " TEST_MPIRUN(2), "true", "", &out) != 0) {
        char reason[512];
        snprintf(reason, sizeof reason, "mpirun cannot start two processes here: %.400s", out);
        free(out);
        cr_skip_test("%s", reason);
    }
    free(out);
}

int test_run_tool(const char *launcher, const char *tool, const char *args, char **output)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "ENN_DEVICE='%s' ENN_VALIDATION=1 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} %s '%s' %s 2>&1",
             test_device(), launcher, tool, args);
    return test_run_shell(cmd, output);
}

int test_hold_run_lock(const char *dir, const char *holder)
{
    char path[512];
    snprintf(path, sizeof path, "%s/.enn-train.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "cannot create %s", path);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0, "cannot lock %s", path);
    cr_assert_eq(write(fd, holder, strlen(holder)), (ssize_t)strlen(holder), "cannot write %s", path);
    return fd;
}

int test_same_file(const char *dir_a, const char *dir_b, const char *name)
{
    char pa[160], pb[160];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, name);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, name);
    FILE *a = fopen(pa, "rb"), *b = fopen(pb, "rb");
    cr_assert(a && b, "%s or %s is missing", pa, pb);
    int same = 1, ca, cb;
    do {
        ca = fgetc(a);
        cb = fgetc(b);
        same = ca == cb;
    } while (same && ca != EOF);
    fclose(a);
    fclose(b);
    return same;
}

const char *const test_checkpoint_keys[] = {"format", "format_version", "config",  "step",
                                            "passes", "state_T",        "state_B", "data_crc32", NULL};

/* The loop state of a checkpoint's metadata without what a resumed run cannot repeat:
 * the seconds spent and the logs' sizes (their rows hold times). */
static char *comparable_state(const char *text)
{
    json_t *root = json_loads(text, 0, NULL);
    cr_assert_not_null(root, "the loop state is not JSON: %s", text);
    json_object_del(root, "seconds");
    json_object_del(root, "log_bytes");
    char *out = json_dumps(root, JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(root);
    return out;
}

int test_same_checkpoint(const char *dir_a, const char *dir_b, const char *name)
{
    char pa[160], pb[160];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, name);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, name);
    enn_safetensors *a, *b;
    cr_assert_eq(enn_safetensors_read(pa, &a), ENN_OK, "%s", enn_last_error());
    cr_assert_eq(enn_safetensors_read(pb, &b), ENN_OK, "%s", enn_last_error());
    int same = enn_safetensors_count(a) == enn_safetensors_count(b);
    for (uint32_t i = 0; same && i < enn_safetensors_count(a); i++) {
        const enn_st_tensor *ta = enn_safetensors_at(a, i), *tb = enn_safetensors_find(b, ta->name);
        same = tb && ta->dtype == tb->dtype && ta->rank == tb->rank &&
               !memcmp(ta->shape, tb->shape, ta->rank * sizeof *ta->shape) &&
               !memcmp(ta->data, tb->data, enn_st_elements(ta) * enn_st_dtype_size(ta->dtype));
    }
    for (int k = 0; same && test_checkpoint_keys[k]; k++) {
        const char *va = enn_safetensors_meta(a, test_checkpoint_keys[k]), *vb = enn_safetensors_meta(b, test_checkpoint_keys[k]);
        same = (!va && !vb) || (va && vb && !strcmp(va, vb));
    }
    const char *sa = enn_safetensors_meta(a, "enn.train_state"), *sb = enn_safetensors_meta(b, "enn.train_state");
    if (same && (sa || sb)) {
        same = sa && sb;
        if (same) {
            char *ca = comparable_state(sa), *cb = comparable_state(sb);
            same = !strcmp(ca, cb);
            free(ca);
            free(cb);
        }
    }
    enn_safetensors_free(a);
    enn_safetensors_free(b);
    return same;
}
