/* Uploads and downloads. A mappable (unified-memory) buffer is copied with memcpy; any
 * other goes through one host-visible staging buffer in chunks, each chunk a small
 * submission of its own. Both wait for earlier libenn work first. */
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "core/memory.h"

#define STAGING_BYTES ((VkDeviceSize)16 << 20)

int enn_find_memory_type(enn_context *ctx, uint32_t bits, VkMemoryPropertyFlags want, uint32_t *out)
{
    const VkPhysicalDeviceMemoryProperties *mp = &ctx->memory_properties;
    for (uint32_t t = 0; t < mp->memoryTypeCount; t++)
        if ((bits & (1u << t)) && (mp->memoryTypes[t].propertyFlags & want) == want) {
            *out = t;
            return 1;
        }
    return 0;
}

enn_status enn_transfer_create(enn_context *ctx)
{
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = ctx->queue_family};
    ENN_VK_TRY(vkCreateCommandPool(ctx->device, &pci, ctx->vk_callbacks, &ctx->transfer_pool));
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = ctx->transfer_pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    ENN_VK_TRY(vkAllocateCommandBuffers(ctx->device, &cai, &ctx->transfer_cmd));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    ENN_VK_TRY(vkCreateFence(ctx->device, &fci, ctx->vk_callbacks, &ctx->transfer_fence));

    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = STAGING_BYTES,
                             .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    ENN_VK_TRY(vkCreateBuffer(ctx->device, &bi, ctx->vk_callbacks, &ctx->staging_buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, ctx->staging_buffer, &req);
    uint32_t type;
    VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    ctx->staging_coherent = 1;
    /* Cached memory makes downloads fast; coherent saves flushes. Take both if offered. */
    if (!enn_find_memory_type(ctx, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, &type) &&
        !enn_find_memory_type(ctx, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, &type)) {
        if (!enn_find_memory_type(ctx, req.memoryTypeBits, hv, &type))
            return enn_error(ENN_ERROR_UNSUPPORTED, "the device has no host-visible memory for staging");
        ctx->staging_coherent = 0;
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size, .memoryTypeIndex = type};
    VkResult r = vkAllocateMemory(ctx->device, &ai, ctx->vk_callbacks, &ctx->staging_memory);
    if (r != VK_SUCCESS)
        return enn_vk_allocation_error(r, "the staging buffer", (unsigned long long)req.size);
    ENN_VK_TRY(vkBindBufferMemory(ctx->device, ctx->staging_buffer, ctx->staging_memory, 0));
    ENN_VK_TRY(vkMapMemory(ctx->device, ctx->staging_memory, 0, VK_WHOLE_SIZE, 0, &ctx->staging_mapped));
    ctx->staging_size = STAGING_BYTES;
    return ENN_OK;
}

void enn_transfer_destroy(enn_context *ctx)
{
    if (ctx->staging_memory) {
        if (ctx->staging_mapped) vkUnmapMemory(ctx->device, ctx->staging_memory);
        vkFreeMemory(ctx->device, ctx->staging_memory, ctx->vk_callbacks);
    }
    if (ctx->staging_buffer) vkDestroyBuffer(ctx->device, ctx->staging_buffer, ctx->vk_callbacks);
    if (ctx->transfer_fence) vkDestroyFence(ctx->device, ctx->transfer_fence, ctx->vk_callbacks);
    if (ctx->transfer_pool) vkDestroyCommandPool(ctx->device, ctx->transfer_pool, ctx->vk_callbacks);
}

/* One chunk between the staging buffer and a device buffer, submitted and waited for. */
static enn_status copy_chunk(enn_context *ctx, VkBuffer src, VkDeviceSize src_off, VkBuffer dst,
                             VkDeviceSize dst_off, VkDeviceSize bytes)
{
    ENN_VK_TRY(vkResetCommandBuffer(ctx->transfer_cmd, 0));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    ENN_VK_TRY(vkBeginCommandBuffer(ctx->transfer_cmd, &bi));
    VkBufferCopy region = {.srcOffset = src_off, .dstOffset = dst_off, .size = bytes};
    vkCmdCopyBuffer(ctx->transfer_cmd, src, dst, 1, &region);
    /* Make the copy's writes visible to later shaders and to the host. */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT | VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(ctx->transfer_cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    ENN_VK_TRY(vkEndCommandBuffer(ctx->transfer_cmd));
    ENN_VK_TRY(vkResetFences(ctx->device, 1, &ctx->transfer_fence));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                       .pCommandBuffers = &ctx->transfer_cmd};
    VkResult r = enn_context_submit(ctx, &si, ctx->transfer_fence);
    if (r != VK_SUCCESS && r != VK_ERROR_DEVICE_LOST) return enn_vk_error(r, "vkQueueSubmit (copy)");
    /* A submission that returned VK_ERROR_DEVICE_LOST is pending all the same (the spec):
     * its fence is waited for, which ends it, before anything reuses or destroys it. */
    ctx->host_waits++;
    VkResult w = vkWaitForFences(ctx->device, 1, &ctx->transfer_fence, VK_TRUE, UINT64_MAX);
    const char *what = "vkQueueSubmit (copy)";
    if (r == VK_SUCCESS) r = w, what = "vkWaitForFences (copy)";
    if (r != VK_SUCCESS) return enn_context_vk_error(ctx, r, what);
    return ENN_OK;
}

static enn_status check_range(const char *fn, enn_context *ctx, const enn_buffer *buf, size_t offset,
                              const void *host, size_t bytes)
{
    if (!ctx || !buf || !host) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    if (bytes == 0) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: size is zero", fn);
    if (offset > buf->size || bytes > buf->size - offset)
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "%s: bytes [%zu, %zu) outside a buffer of %zu bytes", fn,
                         offset, offset + bytes, (size_t)buf->size);
    return ENN_OK;
}

static enn_status flush_staging(enn_context *ctx, int invalidate, VkDeviceSize bytes)
{
    if (ctx->staging_coherent) return ENN_OK;
    VkDeviceSize atom = ctx->non_coherent_atom_size;
    VkMappedMemoryRange r = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = ctx->staging_memory,
                             .offset = 0, .size = (bytes + atom - 1) / atom * atom};
    if (r.size > ctx->staging_size) r.size = VK_WHOLE_SIZE;
    if (invalidate) ENN_VK_TRY(vkInvalidateMappedMemoryRanges(ctx->device, 1, &r));
    else ENN_VK_TRY(vkFlushMappedMemoryRanges(ctx->device, 1, &r));
    return ENN_OK;
}

enn_status enn_buffer_upload(enn_context *ctx, enn_buffer *buf, size_t offset, const void *src, size_t bytes)
{
    ENN_TRY(check_range("enn_buffer_upload", ctx, buf, offset, src, bytes));
    ENN_TRY(enn_context_wait_pending(ctx));
    if (buf->mapped) {
        memcpy((char *)buf->mapped + offset, src, bytes);
        return ENN_OK;
    }
    for (size_t done = 0; done < bytes;) {
        VkDeviceSize n = bytes - done < ctx->staging_size ? bytes - done : ctx->staging_size;
        memcpy(ctx->staging_mapped, (const char *)src + done, n);
        ENN_TRY(flush_staging(ctx, 0, n));
        ENN_TRY(copy_chunk(ctx, ctx->staging_buffer, 0, buf->vk_buffer, buf->offset + offset + done, n));
        done += n;
    }
    return ENN_OK;
}

enn_status enn_buffer_download(enn_context *ctx, const enn_buffer *buf, size_t offset, void *dst, size_t bytes)
{
    ENN_TRY(check_range("enn_buffer_download", ctx, buf, offset, dst, bytes));
    ENN_TRY(enn_context_wait_pending(ctx));
    if (buf->mapped) {
        memcpy(dst, (const char *)buf->mapped + offset, bytes);
        return ENN_OK;
    }
    for (size_t done = 0; done < bytes;) {
        VkDeviceSize n = bytes - done < ctx->staging_size ? bytes - done : ctx->staging_size;
        ENN_TRY(copy_chunk(ctx, buf->vk_buffer, buf->offset + offset + done, ctx->staging_buffer, 0, n));
        ENN_TRY(flush_staging(ctx, 1, n));
        memcpy((char *)dst + done, ctx->staging_mapped, n);
        done += n;
    }
    return ENN_OK;
}
