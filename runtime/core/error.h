/* Status codes with a per-thread message: every failure path sets both in one call. */
#ifndef ENN_CORE_ERROR_H
#define ENN_CORE_ERROR_H

#include <vulkan/vulkan.h>
#include "enn.h"

/* Records a formatted message for enn_last_error() and returns `status`, so that a
 * failure reads `return enn_error(ENN_ERROR_SHAPE, "W_z is %dx%d, want ...", ...);`. */
enn_status enn_error(enn_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Clears the message (on success paths of public entry points). */
void enn_error_clear(void);
/* Maps a failed VkResult to a status and records "<what>: VK_ERROR_...". */
enn_status enn_vk_error(VkResult r, const char *what);
const char *enn_vk_result_name(VkResult r);
/* A failed vkAllocateMemory: the status enn_vk_error gives, and a message that says in
 * words what went wrong (out of device memory, ...), for what, and how many bytes:
 * "out of device memory allocating the staging buffer (16777216 bytes): VK_ERROR_...". */
enn_status enn_vk_allocation_error(VkResult r, const char *what, unsigned long long bytes);

/* Checks a Vulkan call; on failure records the message and returns from the caller. */
#define ENN_VK_TRY(call)                                                 \
    do {                                                                 \
        VkResult enn_vk_r_ = (call);                                     \
        if (enn_vk_r_ != VK_SUCCESS) return enn_vk_error(enn_vk_r_, #call); \
    } while (0)
/* Propagates a non-OK status (the message is already recorded). */
#define ENN_TRY(expr)                                                    \
    do {                                                                 \
        enn_status enn_s_ = (expr);                                      \
        if (enn_s_ != ENN_OK) return enn_s_;                             \
    } while (0)

#endif
