/* The public structs that grow (enn.h, "structs that grow"): a caller's struct_size says
 * how many bytes of the struct it has, and libenn reads and writes no more than that. */
#ifndef ENN_CORE_STRUCT_SIZE_H
#define ENN_CORE_STRUCT_SIZE_H

#include <stddef.h>

#include "enn.h"

/* A caller's input struct copied into `local` (this libenn's struct, `local_size` bytes):
 * zeroed, then min(struct_size, local_size) bytes copied, so that later reads see only
 * what the caller has and zero for the rest; the copy's struct_size is then local_size.
 * `name` ("enn_context_options") names the struct in messages; `size_0_2` is its
 * ENN_<STRUCT>_SIZE_0_2. */
enn_status enn_struct_read(const char *name, const void *caller, size_t size_0_2, void *local, size_t local_size);

/* `local` (this libenn's filled struct) written into a caller's output struct: at most
 * its struct_size bytes (0: size_0_2), then struct_size set to the bytes written. */
enn_status enn_struct_write(const char *name, void *caller, const void *local, size_t size_0_2, size_t local_size);

/* The two for a typed struct: `caller` and `local` point at the same struct type. */
#define ENN_STRUCT_READ(name, size_0_2, caller, local) \
    enn_struct_read(name, caller, size_0_2, local, sizeof *(local))
#define ENN_STRUCT_WRITE(name, size_0_2, caller, local) \
    enn_struct_write(name, caller, local, size_0_2, sizeof *(local))

#endif
