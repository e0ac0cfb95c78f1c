/* The context: the Vulkan instance, device and queue libenn runs on (owned or adopted),
 * what the device can do, and the per-context services (memory, pipelines, transfers). */
#ifndef ENN_CORE_CONTEXT_H
#define ENN_CORE_CONTEXT_H

#include <pthread.h>
#include <stdatomic.h>
#include <vulkan/vulkan.h>

#include "enn.h"
#include "enn_vulkan.h"
#include "core/env_settings.h"

typedef struct enn_allocator enn_allocator;
typedef struct enn_pipeline_registry enn_pipeline_registry;

/* Features actually enabled on the VkDevice (capabilities after ENN_DISABLE_*). */
typedef struct enn_enabled_features {
    int push_descriptors;
    int storage_16bit;
    int fp16_arithmetic;
    int subgroup_size_control;
    int coopmat_khr;
    int coopmat_nv;
    int timestamps;
    int shader_int64;   /* 64-bit integers in shaders (CPU devices: 64-bit stores) */
    int events;         /* VkEvent (all but portability-subset devices, which may lack them) */
} enn_enabled_features;

struct enn_context {
    VkInstance instance;
    VkPhysicalDevice physical_device;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    int owns_instance, owns_device;
    uint32_t instance_api_version;   /* the instance's VkApplicationInfo.apiVersion */
    /* The caller's host allocator (enn_context_options or enn_vulkan_handles), given to
     * every vkCreate*, vkDestroy*, vkAllocateMemory and vkFreeMemory libenn makes; NULL:
     * the driver's own. Vulkan requires a destroy to get the callbacks its create got. */
    const VkAllocationCallbacks *vk_callbacks;
    /* An adopted queue's lock (enn_vulkan_handles.queue_lock): held around each of
     * libenn's submissions, for a caller that submits from other threads. NULL: none. */
    void (*queue_lock)(void *user);
    void (*queue_unlock)(void *user);
    void *queue_lock_user;

    VkDebugUtilsMessengerEXT messenger;
    atomic_uint validation_count;
    char validation_first[2048];
    atomic_int validation_first_ready; /* set (release) once validation_first is written */
    void (*validation_callback)(void *user, const char *message);
    void *validation_user;

    enn_capabilities caps;
    enn_enabled_features enabled;
    VkPhysicalDeviceMemoryProperties memory_properties;
    VkDeviceSize non_coherent_atom_size;
    PFN_vkCmdPushDescriptorSetKHR cmd_push_descriptor_set;

    /* ENN_GEMM_*, ENN_DISABLE_SPLIT_K, ... as they were when the context was created:
     * op code reads these, never the environment. */
    enn_env_settings env;

    uint32_t max_dispatches_per_submit;
    int force_staging;               /* ENN_FORCE_STAGING: never map device memory */
    int exact_bindings;              /* ENN_EXACT_BINDINGS: each storage binding through a VkBuffer
                                        of its own range (enn_buffer_alias) */
    int texel_buffer_u32;            /* R32G32B32A32_UINT uniform texel buffers, and texel
                                        buffers not switched off (caps.texel_buffer_f32) */

    enn_allocator *allocator;
    enn_pipeline_registry *pipelines;
    struct enn_recorder *recorders;  /* live recorders (recorder.c keeps the list) */

    /* Transfers (uploads, downloads) go through one staging buffer and command buffer. */
    VkCommandPool transfer_pool;
    VkCommandBuffer transfer_cmd;
    VkFence transfer_fence;
    VkBuffer staging_buffer;
    VkDeviceMemory staging_memory;
    void *staging_mapped;
    VkDeviceSize staging_size;
    int staging_coherent;

    /* Submissions not yet known to be complete; uploads and downloads wait for them. */
    VkFence *pending_fences;
    uint32_t pending_count, pending_capacity;

    /* Times the host blocked on the device: each fence wait (a recording, a staged copy,
     * the pending submissions before a transfer). Read by `enn bench train`. */
    uint64_t host_waits;

    /* Set when a submission or wait returned VK_ERROR_DEVICE_LOST: what the device held
     * is gone, so every later call fails (enn_context_usable) instead of reading it. */
    int device_lost;
};

/* 1 when the environment variable is set to something other than "" or "0". */
int enn_env_flag(const char *name);

/* Fills caps for a physical device (before the ENN_DISABLE_* switches). A query that
 * fails (out of memory, a driver error) is an error, never a feature quietly off. */
enn_status enn_query_capabilities(VkInstance instance, VkPhysicalDevice pd, enn_capabilities *caps);
/* Applies ENN_DISABLE_FP16, ENN_DISABLE_COOPMAT, ENN_DISABLE_PUSH_DESCRIPTORS,
 * ENN_DISABLE_SUBGROUP_SIZE_CONTROL, ENN_DISABLE_TIMESTAMPS. */
void enn_apply_disable_switches(enn_capabilities *caps);
/* *has = 1 when the physical device has the named device extension. */
enn_status enn_device_has_extension(VkPhysicalDevice pd, const char *name, int *has);

/* The index ENN_DEVICE or `request` names among `count` devices, or the best one. */
enn_status enn_choose_device(VkPhysicalDevice *devices, uint32_t count, const char *request,
                             uint32_t *chosen);

/* enn_vk_error for a call on ctx's device; VK_ERROR_DEVICE_LOST also marks the context
 * lost and says what that means for the caller. */
enn_status enn_context_vk_error(enn_context *ctx, VkResult r, const char *what);
/* ENN_OK, or ENN_ERROR_DEVICE_LOST once the device was lost. */
enn_status enn_context_usable(const enn_context *ctx);
/* Checks a Vulkan call on ctx's device (ENN_VK_TRY that notices a lost device). */
#define ENN_VK_TRY_ON(ctx, call)                                                      \
    do {                                                                              \
        VkResult enn_vk_r_ = (call);                                                  \
        if (enn_vk_r_ != VK_SUCCESS) return enn_context_vk_error((ctx), enn_vk_r_, #call); \
    } while (0)

/* Registers a fence whose submission libenn must finish before host access. */
enn_status enn_context_track_fence(enn_context *ctx, VkFence fence);
/* vkQueueSubmit of one batch on the context's queue, under the caller's queue lock when
 * it gave one: every submission of libenn goes through here. */
VkResult enn_context_submit(enn_context *ctx, const VkSubmitInfo *submit, VkFence fence);
/* Waits for every tracked submission; afterwards all device writes are visible. */
enn_status enn_context_wait_pending(enn_context *ctx);
/* Forgets a fence (its owner is about to destroy or reuse it, after waiting on it). */
void enn_context_untrack_fence(enn_context *ctx, VkFence fence);

/* A memory type in `bits` with every property in `want`; 0 when there is none. */
int enn_find_memory_type(enn_context *ctx, uint32_t bits, VkMemoryPropertyFlags want, uint32_t *out);

/* Services created with the context (memory.c, pipelines.c, transfer.c). */
enn_status enn_allocator_create(enn_context *ctx);
void enn_allocator_destroy(enn_context *ctx);
enn_status enn_pipelines_create(enn_context *ctx, const char *cache_dir);
void enn_pipelines_destroy(enn_context *ctx);
enn_status enn_transfer_create(enn_context *ctx);
void enn_transfer_destroy(enn_context *ctx);

#endif
