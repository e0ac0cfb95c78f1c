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
               "the spec says) with zero Adam moments to a safetensors checkpoint.\n\n");
    enn_cli_model_help(f);
}

int cmd_init(int argc, char **argv)
{
    enn_model_config config;
    enn_cli_model_defaults(argc, argv, &config);
    const char *out = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        char flag[64];
        const char *value;
        if (strncmp(argv[i], "--", 2) || !enn_cli_flag_value(argc, argv, &i, flag, sizeof flag, &value)) {
            if (strncmp(argv[i], "--", 2)) fprintf(stderr, "enn init: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
        int r = enn_cli_model_option(&config, flag, value);
        if (r == ENN_CLI_ERROR) return 2;
        if (r == ENN_CLI_HANDLED) continue;
        if (!strcmp(flag, "--out")) out = value;
        else if (!strcmp(flag, "--device")) device = value;
        else {
            fprintf(stderr, "enn init: unknown option '%s' (see enn init --help)\n", flag);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "enn init: --out is required\n");
        return 2;
    }
    if (enn_cli_model_finish(&config)) return 2;
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
