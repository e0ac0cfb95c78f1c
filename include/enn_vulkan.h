/* libenn's Vulkan interop: for programs that already own a VkDevice (a renderer, an
 * engine) and want libenn to run inside it. Needs the Vulkan headers. */
#ifndef ENN_VULKAN_H
#define ENN_VULKAN_H

#include <vulkan/vulkan.h>
#include "enn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The caller's objects. libenn uses them and never destroys them; the caller keeps them
 * alive until enn_context_destroy has returned. The device must have been created with
 * a queue in `queue_family` that supports compute. libenn only uses device features and
 * extensions that are listed as enabled here (NULL/0: core Vulkan 1.1 features only). */
typedef struct enn_vulkan_handles {
    VkInstance instance;
    VkPhysicalDevice physical_device;
    VkDevice device;
    uint32_t queue_family;
    VkQueue queue;
    /* Extensions the caller enabled on `device` (e.g. VK_KHR_push_descriptor). */
    const char *const *enabled_device_extensions;
    uint32_t enabled_device_extension_count;
    /* Optional: the features the caller enabled, as a VkPhysicalDeviceFeatures2 chain
     * (VkPhysicalDeviceVulkan11Features, ...12Features, 16-bit storage, fp16). NULL:
     * assume none beyond core. */
    const VkPhysicalDeviceFeatures2 *enabled_features;
    /* Optional: the vkGetInstanceProcAddr the caller loaded the instance with. NULL: the
     * loader's vkGetInstanceProcAddr that libenn links against. */
    PFN_vkGetInstanceProcAddr get_instance_proc_addr;
} enn_vulkan_handles;

/* Adopts the caller's device. options->device is ignored; validation is the caller's
 * (libenn counts no messages on an adopted device). */
ENN_API enn_status enn_context_create_from_vulkan(const enn_vulkan_handles *handles,
                                                  const enn_context_options *options,
                                                  enn_context **out);

/* The objects a context runs on, owned or adopted. */
ENN_API enn_status enn_context_vulkan_handles(const enn_context *ctx, enn_vulkan_handles *out);

/* The VkBuffer, byte offset and size of a libenn buffer, to bind it in the caller's own
 * pipelines. */
ENN_API enn_status enn_buffer_vulkan(const enn_buffer *buf, VkBuffer *buffer,
                                     VkDeviceSize *offset, VkDeviceSize *size);

#ifdef __cplusplus
}
#endif
#endif /* ENN_VULKAN_H */
