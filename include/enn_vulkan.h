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
 * extensions that are listed as enabled here (NULL/0: core Vulkan 1.1 features only).
 *
 * libenn calls the Vulkan loader it links against (libvulkan.so.1, vulkan-1.dll): the
 * instance and device must come from that loader.
 *
 * Threads: a context, and everything made from it, is used from one thread at a time.
 * libenn submits to `queue` inside enn_* calls (training and evaluation steps, uploads,
 * downloads, enn_stream_step; not enn_stream_record), and Vulkan requires a queue's
 * submissions to be externally synchronised: either the caller does not submit to that
 * queue from another thread while such a call runs, or it hands libenn its queue lock
 * (queue_lock below), as a render thread that keeps submitting would.
 *
 * Destroy the context's models, streams and buffers before the context (as Vulkan's own
 * children go before their device). A context destroyed first still releases what they
 * hold on the device, so that the caller's device is left clean, but they can then be
 * neither used nor destroyed. */
typedef struct enn_vulkan_handles {
    /* A struct that grows (enn.h, "structs that grow"): 0 is the 0.2 size, so a
     * zero-initialised struct works. Set it also before enn_context_vulkan_handles. */
    uint32_t struct_size;
    /* The VkApplicationInfo.apiVersion the instance was created with: at least
     * VK_API_VERSION_1_1 (libenn calls 1.1 entry points). */
    uint32_t api_version;
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
    /* Optional: the VkAllocationCallbacks for libenn's objects on `device`, usually those
     * `device` was created with. libenn passes them to every vkCreate*, vkDestroy*,
     * vkAllocateMemory and vkFreeMemory it calls on the device, so the caller's host
     * allocator sees all of libenn's Vulkan objects. They must stay valid until
     * enn_context_destroy has returned. NULL: libenn passes pAllocator = NULL.
     * enn_context_options.vk_allocation_callbacks is not used for an adopted device. */
    const VkAllocationCallbacks *allocation_callbacks;
    /* Optional: the caller's lock on `queue`, for a caller that submits to it from other
     * threads while enn_* calls run. libenn calls queue_lock(queue_lock_user) just before
     * each of its vkQueueSubmit calls on `queue` and queue_unlock(queue_lock_user) just
     * after, on the thread of the enn_* call; it waits for nothing while holding the lock
     * and never takes it twice. Both or neither; NULL: no lock (see "Threads" above). */
    void (*queue_lock)(void *user);
    void (*queue_unlock)(void *user);
    void *queue_lock_user;
} enn_vulkan_handles;
/* The bytes of enn_vulkan_handles in libenn 0.2: up to its last 0.2 field. */
#define ENN_VULKAN_HANDLES_SIZE_0_2 (offsetof(enn_vulkan_handles, queue_lock_user) + sizeof(void *))

/* Adopts the caller's device. options->device is ignored; validation is the caller's
 * (libenn counts no messages on an adopted device). */
ENN_API enn_status enn_context_create_from_vulkan(const enn_vulkan_handles *handles,
                                                  const enn_context_options *options,
                                                  enn_context **out);

/* The objects a context runs on, owned or adopted: `out` is written up to its
 * struct_size (0: ENN_VULKAN_HANDLES_SIZE_0_2), which is then the bytes written. */
ENN_API enn_status enn_context_vulkan_handles(const enn_context *ctx, enn_vulkan_handles *out);

/* The VkBuffer, byte offset and size of a libenn buffer, to bind it in the caller's own
 * pipelines. */
ENN_API enn_status enn_buffer_vulkan(const enn_buffer *buf, VkBuffer *buffer,
                                     VkDeviceSize *offset, VkDeviceSize *size);

/* Streaming inference inside the caller's own submission (a renderer that makes its
 * input and uses the output on the GPU). enn_stream_record records one step of `stream`
 * (see enn_stream_step) into `cmd`, which the caller has begun and will end, submit and
 * synchronise; nothing is submitted by libenn and nothing waits.
 *
 *   io->input   [batch, input_features] floats at input_offset (an embedding language
 *               model: [batch] uint32 token ids; a float-token language model: [batch]
 *               floats), read with a transfer (needs VK_BUFFER_USAGE_TRANSFER_SRC_BIT)
 *   io->output  [batch, outputs] floats written at output_offset with a transfer
 *               (VK_BUFFER_USAGE_TRANSFER_DST_BIT); output may be VK_NULL_HANDLE
 *   Offsets need no alignment. enn_buffer_vulkan gives a libenn buffer's VkBuffer.
 *
 * Barrier contract (same queue): libenn's commands begin with a pipeline barrier from
 * every earlier command (ALL_COMMANDS, MEMORY_WRITE) to its compute and transfer reads
 * and writes, and end with one from its writes to every later command and the host
 * (ALL_COMMANDS | HOST, MEMORY_READ | MEMORY_WRITE | HOST_READ). The caller adds no
 * barrier of its own around the step. Across queues the caller orders the submissions
 * with semaphores (and transfers ownership of exclusive buffers, if the queue families
 * differ). cmd must be on a queue family that supports compute.
 *
 * The recorded step reads and writes the stream's state in place, so submitting the
 * command buffer N times (if it was not begun ONE_TIME_SUBMIT) runs N steps, with the
 * same io buffers. Submissions that touch one stream must not overlap in time on
 * different queues. Host calls on the stream (step, reset, state) and training the
 * model wait for libenn's queue only: the caller waits for its own submissions first.
 * With push descriptors (enn_capabilities.push_descriptors) every recording stays valid
 * while the stream lives: frame N+1 may be recorded while frame N's command buffer is
 * still pending, and a recording may be submitted again later.
 * Without push descriptors a recording holds descriptor sets of the stream's until it
 * has run (its commands end by setting an event of the stream's): up to 3 recordings
 * may wait to run at once, frames in flight, and a 4th enn_stream_record is refused
 * with ENN_ERROR_INVALID_ARGUMENT until one of them has run. A recording whose sets
 * were taken back this way is not to be submitted again. A recording that will never
 * run (dropped) holds its sets until enn_stream_reset, which takes back all of them.
 * A step must also fit one submission of the context
 * (enn_context_options.max_dispatches_per_submit; a step is about 15 commands).
 * enn_stream_position counts recorded steps. On failure `cmd` may hold part of a step:
 * the caller resets or frees it rather than submitting it (the failed recording holds
 * nothing). Destroy a stream only once its recordings have run or been dropped. */
typedef struct enn_stream_io {
    VkBuffer input;
    VkDeviceSize input_offset;
    VkBuffer output;
    VkDeviceSize output_offset;
} enn_stream_io;

ENN_API enn_status enn_stream_record(enn_stream *stream, VkCommandBuffer cmd, const enn_stream_io *io);

#ifdef __cplusplus
}
#endif
#endif /* ENN_VULKAN_H */
