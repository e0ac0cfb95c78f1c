/* Flag values of the `enn` commands: integers, numbers, words and on|off switches, each
 * checked against its limits in one place, so that every command words a bad value the
 * same way. A parser returns 0 when it took the value; otherwise it prints
 *
 *     enn: --flag: 'value' is not <what the flag wants>      (or "enn: --flag needs a value ...")
 *
 * to stderr and returns -1. */
#ifndef ENN_TOOLS_CLI_VALUES_H
#define ENN_TOOLS_CLI_VALUES_H

#include <stddef.h>
#include <stdint.h>

/* Prints the message above (value NULL: the value is missing); returns -1. */
int enn_cli_bad(const char *flag, const char *value, const char *want);

/* Whether `text` is a decimal integer (digits only), and which. Prints nothing. */
int enn_cli_is_u64(const char *text, uint64_t *out);
/* Decimal integers in [min, max]. */
int enn_cli_u64(const char *flag, const char *value, uint64_t min, uint64_t max, uint64_t *out);
int enn_cli_u32(const char *flag, const char *value, uint32_t min, uint32_t max, uint32_t *out);
/* Numbers in [min, max] (NaN and infinities are outside). */
int enn_cli_double(const char *flag, const char *value, double min, double max, double *out);
int enn_cli_float(const char *flag, const char *value, double min, double max, float *out);
/* One of the NULL-terminated `words` ('-' and '_' compare alike, as in the checkpoint's
 * config JSON); *out is its index. The message lists the words, spelt with '-'. */
int enn_cli_word(const char *flag, const char *value, const char *const *words, int *out);
/* Whether `value` is a switch word (on|off, true|false, yes|no, 1|0), and which. Prints
 * nothing. */
int enn_cli_switch_word(const char *value, int *on);

/* Splits argv[*i] into flag and value: "--flag=value", or "--flag" followed by argv[*i+1]
 * (then *i advances). Returns 0 and prints a message if the value is missing. */
int enn_cli_flag_value(int argc, char **argv, int *i, char *flag, size_t flag_size, const char **value);

#endif
