#include "core/error.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];

/* Case-insensitive: whether `s` already says it ran out ("out of host memory",
 * jansson's "Out of memory", VK_ERROR_OUT_OF_DEVICE_MEMORY). A bare "memory" is not
 * enough: "allocating the memory manager" does not say what went wrong. */
static int says_out_of_memory(const char *s)
{
    static const char *const needles[] = {"out of memory", "out of host memory", "out of device memory",
                                          "out_of_host_memory", "out_of_device_memory", "out_of_pool_memory"};
    for (; *s; s++)
        for (size_t i = 0; i < sizeof needles / sizeof *needles; i++) {
            const char *a = s, *b = needles[i];
            while (*b && tolower((unsigned char)*a) == *b) a++, b++;
            if (!*b) return 1;
        }
    return 0;
}

enn_status enn_error(enn_status status, const char *fmt, ...)
{
    /* Formatted apart first: an argument may be enn_last_error() itself. */
    char text[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* Many allocation sites name only what they were building ("free list", a path):
     * say what ran out unless the message already does (VK_ERROR_OUT_OF_..._MEMORY). */
    const char *prefix = "";
    if (status == ENN_ERROR_OUT_OF_HOST_MEMORY && !says_out_of_memory(text)) prefix = "out of host memory: ";
    if (status == ENN_ERROR_OUT_OF_DEVICE_MEMORY && !says_out_of_memory(text)) prefix = "out of device memory: ";
    size_t n = strlen(prefix), m = strlen(text);
    if (m > sizeof last_message - 1 - n) m = sizeof last_message - 1 - n;   /* truncated, as vsnprintf does */
    memcpy(last_message, prefix, n);
    memcpy(last_message + n, text, m);
    last_message[n + m] = '\0';
    return status;
}

void enn_error_clear(void) { last_message[0] = '\0'; }

const char *enn_last_error(void) { return last_message; }

const char *enn_version(void) { return ENN_VERSION_STRING; }

const char *enn_status_name(enn_status s)
{
    switch (s) {
    case ENN_OK: return "ENN_OK";
    case ENN_ERROR_INVALID_ARGUMENT: return "ENN_ERROR_INVALID_ARGUMENT";
    case ENN_ERROR_SHAPE: return "ENN_ERROR_SHAPE";
    case ENN_ERROR_OUT_OF_RANGE: return "ENN_ERROR_OUT_OF_RANGE";
    case ENN_ERROR_OUT_OF_HOST_MEMORY: return "ENN_ERROR_OUT_OF_HOST_MEMORY";
    case ENN_ERROR_OUT_OF_DEVICE_MEMORY: return "ENN_ERROR_OUT_OF_DEVICE_MEMORY";
    case ENN_ERROR_NO_DEVICE: return "ENN_ERROR_NO_DEVICE";
    case ENN_ERROR_UNSUPPORTED: return "ENN_ERROR_UNSUPPORTED";
    case ENN_ERROR_DEVICE_LOST: return "ENN_ERROR_DEVICE_LOST";
    case ENN_ERROR_VULKAN: return "ENN_ERROR_VULKAN";
    case ENN_ERROR_IO: return "ENN_ERROR_IO";
    case ENN_ERROR_FORMAT: return "ENN_ERROR_FORMAT";
    case ENN_ERROR_INTERNAL: return "ENN_ERROR_INTERNAL";
    }
    return "ENN_ERROR_UNKNOWN";
}

const char *enn_vk_result_name(VkResult r)
{
    switch (r) {
#define C(x) case x: return #x;
    C(VK_SUCCESS) C(VK_NOT_READY) C(VK_TIMEOUT) C(VK_EVENT_SET) C(VK_EVENT_RESET)
    C(VK_INCOMPLETE) C(VK_ERROR_OUT_OF_HOST_MEMORY) C(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    C(VK_ERROR_INITIALIZATION_FAILED) C(VK_ERROR_DEVICE_LOST) C(VK_ERROR_MEMORY_MAP_FAILED)
    C(VK_ERROR_LAYER_NOT_PRESENT) C(VK_ERROR_EXTENSION_NOT_PRESENT)
    C(VK_ERROR_FEATURE_NOT_PRESENT) C(VK_ERROR_INCOMPATIBLE_DRIVER)
    C(VK_ERROR_TOO_MANY_OBJECTS) C(VK_ERROR_FORMAT_NOT_SUPPORTED)
    C(VK_ERROR_FRAGMENTED_POOL) C(VK_ERROR_UNKNOWN) C(VK_ERROR_OUT_OF_POOL_MEMORY)
    C(VK_ERROR_INVALID_EXTERNAL_HANDLE) C(VK_ERROR_FRAGMENTATION)
    C(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS) C(VK_PIPELINE_COMPILE_REQUIRED)
#undef C
    default: return "VkResult(unknown)";
    }
}

enn_status enn_vk_error(VkResult r, const char *what)
{
    enn_status s = ENN_ERROR_VULKAN;
    switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY: s = ENN_ERROR_OUT_OF_HOST_MEMORY; break;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_TOO_MANY_OBJECTS:
    case VK_ERROR_FRAGMENTATION: s = ENN_ERROR_OUT_OF_DEVICE_MEMORY; break;
    case VK_ERROR_DEVICE_LOST: s = ENN_ERROR_DEVICE_LOST; break;
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_LAYER_NOT_PRESENT:
    case VK_ERROR_INCOMPATIBLE_DRIVER: s = ENN_ERROR_UNSUPPORTED; break;
    default: break;
    }
    return enn_error(s, "%s failed: %s", what, enn_vk_result_name(r));
}

enn_status enn_vk_allocation_error(VkResult r, const char *what, unsigned long long bytes)
{
    enn_status s = enn_vk_error(r, "vkAllocateMemory");
    const char *words = s == ENN_ERROR_OUT_OF_DEVICE_MEMORY ? "out of device memory"
                        : s == ENN_ERROR_OUT_OF_HOST_MEMORY ? "out of host memory"
                        : s == ENN_ERROR_DEVICE_LOST        ? "the device was lost"
                                                            : "vkAllocateMemory failed";
    return enn_error(s, "%s allocating %s (%llu bytes): %s", words, what, bytes, enn_vk_result_name(r));
}
