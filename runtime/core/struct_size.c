#include "core/struct_size.h"

#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "enn_vulkan.h"

/* In this release (0.2) each growing struct is its 0.2 layout whole; later releases
 * keep the macros' values and append fields after them. */
_Static_assert(ENN_CONTEXT_OPTIONS_SIZE_0_2 == sizeof(enn_context_options), "enn_context_options is not its 0.2 size");
_Static_assert(ENN_VULKAN_HANDLES_SIZE_0_2 == sizeof(enn_vulkan_handles), "enn_vulkan_handles is not its 0.2 size");
_Static_assert(ENN_CAPABILITIES_SIZE_0_2 == sizeof(enn_capabilities), "enn_capabilities is not its 0.2 size");
_Static_assert(ENN_MODEL_CONFIG_SIZE_0_2 == sizeof(enn_model_config), "enn_model_config is not its 0.2 size");

/* struct_size is every growing struct's first member. */
static uint32_t struct_size_of(const void *s)
{
    uint32_t size;
    memcpy(&size, s, sizeof size);
    return size;
}

/* The caller's size in bytes, 0 standing for the 0.2 size; fails below the 0.2 size. */
static enn_status caller_size(const char *name, const void *s, size_t size_0_2, size_t *out)
{
    uint32_t size = struct_size_of(s);
    if (size && size < size_0_2)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT,
                         "%s.struct_size is %u, below the %zu bytes of the struct in libenn 0.2 (0 stands for those)",
                         name, size, size_0_2);
    *out = size ? size : size_0_2;
    return ENN_OK;
}

/* Bytes past what this libenn knows must be zero: the caller's newer fields at their
 * defaults. A nonzero one asks for something this libenn cannot do. */
static enn_status check_unknown_tail(const char *name, const unsigned char *s, size_t known, size_t size)
{
    size_t first = size, last = 0;
    for (size_t i = known; i < size; i++)
        if (s[i]) {
            if (first == size) first = i;
            last = i;
        }
    if (first == size) return ENN_OK;
    return enn_error(ENN_ERROR_UNSUPPORTED,
                     "%s (struct_size %zu) sets fields this libenn %s does not know (bytes %zu..%zu; it knows %zu)",
                     name, size, enn_version(), first, last, known);
}

enn_status enn_struct_read(const char *name, const void *caller, size_t size_0_2, void *local, size_t local_size)
{
    size_t size = 0;
    ENN_TRY(caller_size(name, caller, size_0_2, &size));
    if (size > local_size) ENN_TRY(check_unknown_tail(name, caller, local_size, size));
    memset(local, 0, local_size);
    memcpy(local, caller, size < local_size ? size : local_size);
    /* The copy is this libenn's whole struct: safe to hand on to any libenn function. */
    uint32_t whole = (uint32_t)local_size;
    memcpy(local, &whole, sizeof whole);
    return ENN_OK;
}

enn_status enn_struct_write(const char *name, void *caller, const void *local, size_t size_0_2, size_t local_size)
{
    size_t size = 0;
    ENN_TRY(caller_size(name, caller, size_0_2, &size));
    uint32_t written = (uint32_t)(size < local_size ? size : local_size);
    memcpy(caller, local, written);
    memcpy(caller, &written, sizeof written);
    return ENN_OK;
}
