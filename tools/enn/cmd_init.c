/* enn init: a freshly initialised model of any configuration, written to a checkpoint.
 * The same flags and seed always give the same file contents. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "enn.h"
#include "model_options.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: enn init [model options] [--device NAME] --out model.safetensors\n\n"
               "Writes a model initialised from --seed (He normal, Glorot uniform, zeros, as\n"
               "the spec says) with zero Adam moments to a safetensors checkpoint. Flags take\n"
               "`--flag value` or `--flag=value`.\n\n"
               "model options (defaults: the classifier's):\n");
    enn_model_config defaults;
    enn_model_config_init(&defaults, ENN_HEAD_CLASSIFIER);
    enn_cli_model_help(f, 0, &defaults);
}

int cmd_init(int argc, char **argv)
{
    enn_cli_model_flags flags;
    enn_cli_model_flags_init(&flags, 0);
    const char *out = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(argv[i], "--", 2)) {
            fprintf(stderr, "enn init: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
        /* "--flag value" or "--flag=value". */
        char flag[64];
        const char *eq = strchr(argv[i], '='), *value = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        snprintf(flag, sizeof flag, "%.*s", eq ? (int)(eq - argv[i]) : (int)strlen(argv[i]), argv[i]);
        int used = enn_cli_model_option(&flags, flag, value, eq != NULL);
        if (used == ENN_CLI_ERROR) return 2;
        if (used == ENN_CLI_UNKNOWN) {
            const char **own = !strcmp(flag, "--out") ? &out : !strcmp(flag, "--device") ? &device : NULL;
            if (!own) {
                fprintf(stderr, "enn init: unknown option '%s' (see enn init --help)\n", flag);
                return 2;
            }
            if (!value) {
                fprintf(stderr, "enn: %s needs a value\n", flag);
                return 2;
            }
            *own = value;
            used = 2;
        }
        if (!eq) i += used - 1;
    }
    if (!out) {
        fprintf(stderr, "enn init: --out is required\n");
        return 2;
    }
    enn_model_config config;
    enn_model_config_init(&config, flags.values.head);
    enn_cli_model_apply(&flags, &config);
    if (enn_cli_model_finish(&flags, &config, 1)) return 2;
    enn_context_options options = {.device = device};
    enn_context *ctx = NULL;
    enn_model *model = NULL;
    int rc = 1;
    if (enn_context_create(&options, &ctx) != ENN_OK || enn_model_create(ctx, &config, &model) != ENN_OK ||
        enn_model_save(model, out) != ENN_OK) {
        fprintf(stderr, "enn init: %s\n", enn_last_error());
        goto done;
    }
    uint64_t params = 0;
    enn_model_parameter_count(&config, &params, NULL);
    printf("%s: %llu parameters in %u tensors, seed %llu\n", out, (unsigned long long)params,
           enn_model_parameter_tensors(model), (unsigned long long)config.seed);
    rc = 0;
done:
    enn_model_destroy(model);
    if (ctx) {
        const char *first = NULL;
        uint32_t messages = enn_context_validation_messages(ctx, &first);
        if (messages) {
            fprintf(stderr, "enn init: %u validation messages, the first: %s\n", messages, first);
            rc = 1;
        }
    }
    enn_context_destroy(ctx);
    return rc;
}
