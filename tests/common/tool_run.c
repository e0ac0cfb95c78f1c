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
