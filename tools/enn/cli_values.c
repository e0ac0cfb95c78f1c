/* Flag values of the `enn` commands (see cli_values.h). */
#include "cli_values.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/config_json.h"

int enn_cli_bad(const char *flag, const char *value, const char *want)
{
    if (!value) fprintf(stderr, "enn: %s needs a value: %s\n", flag, want);
    else fprintf(stderr, "enn: %s: '%s' is not %s\n", flag, value, want);
    return -1;
}

int enn_cli_is_u64(const char *text, uint64_t *out)
{
    /* A digit first: strtoull would also take a sign or white space ("-1" as 2^64 - 1). */
    if (!text || !(*text >= '0' && *text <= '9')) return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(text, &end, 10);
    if (errno || *end) return 0;
    *out = x;
    return 1;
}

int enn_cli_u64(const char *flag, const char *value, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t x;
    if (!enn_cli_is_u64(value, &x) || x < min || x > max) {
        char want[96];
        snprintf(want, sizeof want, "an integer in [%llu, %llu]", (unsigned long long)min, (unsigned long long)max);
        return enn_cli_bad(flag, value, want);
    }
    *out = x;
    return 0;
}

int enn_cli_u32(const char *flag, const char *value, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t x;
    if (enn_cli_u64(flag, value, min, max, &x)) return -1;
    *out = (uint32_t)x;
    return 0;
}

int enn_cli_double(const char *flag, const char *value, double min, double max, double *out)
{
    char want[96];
    snprintf(want, sizeof want, "a number in [%g, %g]", min, max);
    if (!value || !*value) return enn_cli_bad(flag, value, want);
    char *end;
    errno = 0;
    double x = strtod(value, &end);
    if (errno || *end || !(x >= min && x <= max)) return enn_cli_bad(flag, value, want);
    *out = x;
    return 0;
}

int enn_cli_float(const char *flag, const char *value, double min, double max, float *out)
{
    double x;
    if (enn_cli_double(flag, value, min, max, &x)) return -1;
    *out = (float)x;
    return 0;
}

int enn_cli_word(const char *flag, const char *value, const char *const *words, int *out)
{
    int k = value ? enn_enum_parse(words, value) : -1;
    if (k >= 0) {
        *out = k;
        return 0;
    }
    char want[256] = "one of";
    size_t n = strlen(want);
    for (int i = 0; words[i] && n + 1 < sizeof want; i++) {
        want[n++] = ' ';
        for (const char *c = words[i]; *c && n + 1 < sizeof want; c++) want[n++] = *c == '_' ? '-' : *c;
        want[n] = 0;
    }
    return enn_cli_bad(flag, value, want);
}

int enn_cli_switch_word(const char *value, int *on)
{
    static const char *const yes[] = {"on", "true", "yes", "1"}, *const no[] = {"off", "false", "no", "0"};
    for (int i = 0; value && i < 4; i++) {
        if (!strcmp(value, yes[i])) return *on = 1, 1;
        if (!strcmp(value, no[i])) return *on = 0, 1;
    }
    return 0;
}

int enn_cli_flag_value(int argc, char **argv, int *i, char *flag, size_t flag_size, const char **value)
{
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    if (eq) {
        snprintf(flag, flag_size, "%.*s", (int)(eq - arg), arg);
        *value = eq + 1;
        return 1;
    }
    snprintf(flag, flag_size, "%s", arg);
    if (*i + 1 >= argc) {
        fprintf(stderr, "enn: %s needs a value\n", arg);
        return 0;
    }
    *value = argv[++*i];
    return 1;
}
