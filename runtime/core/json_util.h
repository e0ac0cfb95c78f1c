/* jansson calls that tell running out of memory apart from everything else. jansson
 * (2.14, and upstream since) swallows some allocation failures: its dumper ignores a
 * failed write of an object key (json_dumps then returns a damaged text), and its decoder
 * sets json_error_out_of_memory nowhere, reporting most failed allocations as syntax
 * errors or with no message at all. */
#ifndef ENN_CORE_JSON_UTIL_H
#define ENN_CORE_JSON_UTIL_H

#include <jansson.h>

/* json_dumps, but NULL whenever any allocation failed (the text is then never damaged). */
char *enn_json_dumps(const json_t *json, size_t flags);

/* After json_loads/json_loadb, called with `err` zeroed and errno set to 0 before it,
 * given what it returned and errno after: whether the decode ran out of memory. Then
 * even a tree it returned is not to be trusted: jansson's lexer drops the bytes it cannot
 * save when its buffer cannot grow, and goes on (a string loses characters). The C
 * library's malloc sets ENOMEM; a decode that failed with no message failed in an
 * allocation too. (The same lexer can instead abort the process on an assert: nothing
 * here can prevent that.) */
int enn_json_load_out_of_memory(const json_t *root, const json_error_t *err, int err_no);

#endif
