/* Device memory: buffers are ranges carved out of large VkDeviceMemory blocks, each block
 * bound to one VkBuffer, so a tensor costs no Vulkan allocation of its own. */
#ifndef ENN_CORE_MEMORY_H
#define ENN_CORE_MEMORY_H

#include <vulkan/vulkan.h>
#include "enn.h"

typedef struct enn_block enn_block;

struct enn_buffer {
    enn_block *block;
    VkBuffer vk_buffer;      /* the block's buffer */
    VkDeviceSize offset;     /* of this range inside the block */
    VkDeviceSize size;       /* bytes requested */
    VkDeviceSize reserved;   /* bytes taken from the block (size rounded up) */
    void *mapped;            /* host pointer to offset 0 when the block is mappable, else NULL */
};

/* Default size of a block; requests above half of it get a block of their own. */
#define ENN_BLOCK_BYTES ((VkDeviceSize)64 << 20)

/* Starts a new peak: peak_used_bytes becomes the bytes in use now (benchmarks measure
 * one model after another on one context). */
void enn_memory_reset_peak(enn_context *ctx);

/* A new VkBuffer over the memory of buf's bytes [offset, offset + size), for a descriptor
 * that covers just that range (ENN_EXACT_BINDINGS: the validation layer's GPU-assisted bounds
 * checks measure accesses against the bound VkBuffer's size, which for a sub-allocated
 * tensor is a whole block). The buffer starts at the memory alignment at or below the range:
 * *lead is the range's offset in it (0 for ranges on the alignment, as tensors are). The
 * caller destroys it. */
enn_status enn_buffer_alias(enn_context *ctx, const enn_buffer *buf, VkDeviceSize offset, VkDeviceSize size,
                            VkBuffer *out, VkDeviceSize *lead);

/* The largest single allocation the device takes (maxMemoryAllocationSize), in bytes. */
uint64_t enn_memory_max_allocation(const enn_context *ctx);

#endif
