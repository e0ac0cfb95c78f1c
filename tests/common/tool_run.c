/* See tool_run.h. */
#include "tool_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "harness.h"

int test_run_tool(const char *launcher, const char *tool, const char *args, char **output)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "ENN_DEVICE='%s' ENN_VALIDATION=1 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} %s '%s' %s 2>&1",
             test_device(), launcher, tool, args);
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
