/* Command-line flags for every field of enn_model_config, shared by the commands that
 * build a model (enn init, enn train):
 *
 *     enn_model_config c;
 *     enn_cli_model_defaults(argc, argv, &c);     // the --head's defaults first
 *     for each "--flag value" (or "--flag=value"):
 *         switch (enn_cli_model_option(&c, flag, value)) {
 *         case ENN_CLI_HANDLED: consumed both; case ENN_CLI_ERROR: message printed, exit 2;
 *         case ENN_CLI_UNKNOWN: the command's own flag (or an error) }
 *     enn_cli_model_finish(&c);                   // derived defaults, then config check
 *
 * Every model flag takes a value; switches take on|off (also true|false, yes|no, 1|0). */
#ifndef ENN_TOOLS_MODEL_OPTIONS_H
#define ENN_TOOLS_MODEL_OPTIONS_H

#include <stdio.h>

#include "cli_values.h"
#include "enn.h"

enum { ENN_CLI_ERROR = -1, ENN_CLI_UNKNOWN = 0, ENN_CLI_HANDLED = 1 };

/* enn_model_config_init with the head named by a --head flag in argv (classifier when
 * there is none, or it is not a head: enn_cli_model_option reports that later). */
void enn_cli_model_defaults(int argc, char **argv, enn_model_config *config);
/* Applies one flag ("--hidden") with its value. Prints "enn: --flag: problem" to stderr
 * on ENN_CLI_ERROR. */
int enn_cli_model_option(enn_model_config *config, const char *flag, const char *value);
/* Fills what follows from other fields (a float-feature language model has 1 input
 * feature), then enn_model_config_check; prints the problem and returns non-zero if
 * the configuration is impossible. */
int enn_cli_model_finish(enn_model_config *config);
/* One line per flag, for --help. */
void enn_cli_model_help(FILE *f);

#endif
