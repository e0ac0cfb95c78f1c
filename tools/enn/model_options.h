/* The model flags of the `enn` commands (enn init, enn train, enn eval): one table in
 * model_options.c, a row per field of enn_model_config, gives every flag its names, the
 * limits of its value and its --help line, the same for each command:
 *
 *     enn_cli_model_flags flags;
 *     enn_cli_model_flags_init(&flags, 0);        // enn train: ENN_CLI_FROM_DATA
 *     for each argument "--flag" (value: the next argument, or NULL) or "--flag=value":
 *         used = enn_cli_model_option(&flags, flag, value, attached);
 *         // 1 or 2 arguments used; 0: not a model flag (the command's own); -1: error printed
 *     enn_model_config c;
 *     enn_model_config_init(&c, flags.values.head);
 *     ...the command's own defaults (enn train: the data's shape, the baselines' layers)...
 *     enn_cli_model_apply(&flags, &c);            // what the flags gave wins
 *     enn_cli_model_finish(&flags, &c, strict);   // derived fields, flags that do nothing, the check
 *
 * Values: integers and numbers within the limits the table states; words as in the
 * checkpoint's config JSON ('-' for '_' accepted); switches on|off (also true|false,
 * yes|no, 1|0), where a switch alone means on and --no-<switch> means off. A bad value is
 * refused with the flag and the value named (cli_values.h). */
#ifndef ENN_TOOLS_MODEL_OPTIONS_H
#define ENN_TOOLS_MODEL_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "enn.h"

enum { ENN_CLI_ERROR = -1, ENN_CLI_UNKNOWN = 0 };

/* For a command whose data decide the model's shape (enn train, enn eval): --head,
 * --input-features, --max-seq-len, --max-batch, --outputs and --return-sequences are
 * refused, with what sets them instead, and left out of the help. */
#define ENN_CLI_FROM_DATA 1u

typedef struct enn_cli_model_flags {
    enn_model_config values; /* what the flags gave; elsewhere the classifier's defaults */
    uint64_t given;          /* a bit per table row whose field a flag set */
    unsigned refuse;         /* ENN_CLI_FROM_DATA or 0 */
} enn_cli_model_flags;

void enn_cli_model_flags_init(enn_cli_model_flags *flags, unsigned refuse);
/* Takes one flag: `value` is the argument after it (NULL if none), or with `attached` the
 * text after "--flag=" (which it must then use). Returns how many arguments it used (1: a
 * switch alone, 2: the flag and its value), ENN_CLI_UNKNOWN for a flag that is not a
 * model flag, or ENN_CLI_ERROR after printing "enn: --flag: 'value' is not ...". */
int enn_cli_model_option(enn_cli_model_flags *flags, const char *flag, const char *value, int attached);
/* Copies every field a flag gave into `config`. */
void enn_cli_model_apply(const enn_cli_model_flags *flags, enn_model_config *config);
/* Fills what follows from other fields (a float-feature language model has 1 input
 * feature), names each flag in `flags` that does nothing to this model (--hidden for an
 * lstm, --pooling for a regressor: refused with `strict`, else a note), then
 * enn_model_config_check; prints the problem and returns non-zero if the configuration
 * is impossible or a flag was refused. */
int enn_cli_model_finish(const enn_cli_model_flags *flags, enn_model_config *config, int strict);
/* A line per flag (those `refuse` leaves out skipped) with the default from `defaults`. */
void enn_cli_model_help(FILE *f, unsigned refuse, const enn_model_config *defaults);

#endif
