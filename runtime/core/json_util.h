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

#endif
