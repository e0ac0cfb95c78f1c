/* The sub-allocator: first fit over a sorted free list per block, with neighbours merged
 * on free. Blocks that become empty are released, except one kept for reuse. */
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "core/memory.h"

typedef struct free_range {
    VkDeviceSize offset, size;
} free_range;

struct enn_block {
    VkDeviceMemory memory;
    VkBuffer buffer;
    VkDeviceSize size;
    void *mapped;
    free_range *free;        /* sorted by offset, never adjacent */
    uint32_t free_count, free_capacity;
    uint32_t live;           /* sub-allocations in this block */
    enn_block *next;
};

struct enn_allocator {
    enn_block *blocks;
    uint32_t memory_type;
    VkDeviceSize alignment;
    VkDeviceSize memory_alignment;   /* where a buffer may be bound in a block's memory */
    VkDeviceSize max_allocation;
    enn_memory_stats stats;
};

static VkBufferUsageFlags buffer_usage(const enn_context *ctx)
{
    /* Texel buffers: some kernels read (uniform) their operands through buffer views (see
     * enn_pipeline_desc.texel_formats); on CPU devices the recurrence also writes some
     * (storage), the only users of that usage. */
    VkBufferUsageFlags u = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                           VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    if (ctx->caps.device_type == ENN_DEVICE_CPU && ctx->caps.storage_texel_buffer_f32)
        u |= VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT;
    return u;
}

/* Device-local memory; on a unified device a mappable, coherent device-local type. */
static int pick_memory_type(enn_context *ctx, uint32_t type_bits, uint32_t *out)
{
    const VkPhysicalDeviceMemoryProperties *mp = &ctx->memory_properties;
    VkMemoryPropertyFlags mappable = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if (!ctx->force_staging)
        for (uint32_t t = 0; t < mp->memoryTypeCount; t++)
            if ((type_bits & (1u << t)) &&
                (mp->memoryTypes[t].propertyFlags & (VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | mappable)) ==
                    (VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | mappable)) {
                *out = t;
                return 1;
            }
    /* Prefer device-local types that are not host-visible (on a discrete GPU the
     * host-visible ones are the small BAR window). */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t t = 0; t < mp->memoryTypeCount; t++) {
            VkMemoryPropertyFlags f = mp->memoryTypes[t].propertyFlags;
            if (!(type_bits & (1u << t)) || !(f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)) continue;
            if (pass == 0 && (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) continue;
            *out = t;
            return 1;
        }
    for (uint32_t t = 0; t < mp->memoryTypeCount; t++)
        if (type_bits & (1u << t)) { *out = t; return 1; }
    return 0;
}

enn_status enn_allocator_create(enn_context *ctx)
{
    enn_allocator *a = calloc(1, sizeof *a);
    if (!a) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating the memory manager");
    a->alignment = ctx->caps.min_storage_buffer_offset_alignment;
    if (a->alignment < 256) a->alignment = 256; /* also keeps vec4 loads and atoms aligned */
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vkGetPhysicalDeviceProperties2(ctx->physical_device, &p2);
    a->max_allocation = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : ((VkDeviceSize)1 << 31);

    /* Find the memory type once, from a probe buffer's requirements. */
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 4096,
                             .usage = buffer_usage(ctx), .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer probe;
    VkResult r = vkCreateBuffer(ctx->device, &bi, ctx->vk_callbacks, &probe);
    if (r != VK_SUCCESS) { free(a); return enn_vk_error(r, "vkCreateBuffer (probe)"); }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, probe, &req);
    vkDestroyBuffer(ctx->device, probe, ctx->vk_callbacks);
    a->memory_alignment = req.alignment ? req.alignment : 1;
    if (!pick_memory_type(ctx, req.memoryTypeBits, &a->memory_type)) {
        free(a);
        return enn_error(ENN_ERROR_UNSUPPORTED, "no memory type can hold storage buffers");
    }
    if (!(ctx->memory_properties.memoryTypes[a->memory_type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT))
        ctx->force_staging = 1;
    ctx->allocator = a;
    return ENN_OK;
}

static void block_free(enn_context *ctx, enn_block *b)
{
    if (b->buffer) vkDestroyBuffer(ctx->device, b->buffer, ctx->vk_callbacks);
    if (b->memory) {
        if (b->mapped) vkUnmapMemory(ctx->device, b->memory);
        vkFreeMemory(ctx->device, b->memory, ctx->vk_callbacks);
    }
    free(b->free);
    free(b);
}

void enn_allocator_destroy(enn_context *ctx)
{
    enn_allocator *a = ctx->allocator;
    if (!a) return;
    for (enn_block *b = a->blocks, *n; b; b = n) {
        n = b->next;
        block_free(ctx, b);
    }
    free(a);
    ctx->allocator = NULL;
}

static enn_status block_create(enn_context *ctx, VkDeviceSize size, enn_block **out)
{
    enn_allocator *a = ctx->allocator;
    if (size > a->max_allocation)
        return enn_error(ENN_ERROR_OUT_OF_DEVICE_MEMORY,
                         "a buffer of %llu bytes exceeds the device's largest allocation (%llu bytes)",
                         (unsigned long long)size, (unsigned long long)a->max_allocation);
    VkDeviceSize heap = ctx->memory_properties.memoryHeaps[ctx->memory_properties.memoryTypes[a->memory_type].heapIndex].size;
    if (size > heap)
        return enn_error(ENN_ERROR_OUT_OF_DEVICE_MEMORY, "a buffer of %llu bytes exceeds the memory heap (%llu bytes)",
                         (unsigned long long)size, (unsigned long long)heap);
    enn_block *b = calloc(1, sizeof *b);
    if (!b) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating a memory block record");
    b->size = size;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
                             .usage = buffer_usage(ctx), .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(ctx->device, &bi, ctx->vk_callbacks, &b->buffer);
    if (r != VK_SUCCESS) { block_free(ctx, b); return enn_vk_error(r, "vkCreateBuffer (memory block)"); }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, b->buffer, &req);
    if (!(req.memoryTypeBits & (1u << a->memory_type))) {
        block_free(ctx, b);
        return enn_error(ENN_ERROR_INTERNAL, "memory type %u cannot back a buffer of %llu bytes",
                         a->memory_type, (unsigned long long)size);
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size, .memoryTypeIndex = a->memory_type};
    r = vkAllocateMemory(ctx->device, &ai, ctx->vk_callbacks, &b->memory);
    if (r != VK_SUCCESS) {
        block_free(ctx, b);
        return enn_vk_allocation_error(r, "a memory block", (unsigned long long)size);
    }
    r = vkBindBufferMemory(ctx->device, b->buffer, b->memory, 0);
    if (r != VK_SUCCESS) { block_free(ctx, b); return enn_vk_error(r, "vkBindBufferMemory"); }
    if (!ctx->force_staging) {
        r = vkMapMemory(ctx->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped);
        if (r != VK_SUCCESS) { block_free(ctx, b); return enn_vk_error(r, "vkMapMemory"); }
    }
    b->free = malloc(4 * sizeof *b->free);
    if (!b->free) { block_free(ctx, b); return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "free list"); }
    b->free_capacity = 4;
    b->free_count = 1;
    b->free[0] = (free_range){0, size};
    b->next = a->blocks;
    a->blocks = b;
    a->stats.block_bytes += size;
    a->stats.block_count++;
    *out = b;
    return ENN_OK;
}

/* First fit in one block; returns 1 and the offset on success. */
static int block_take(enn_block *b, VkDeviceSize bytes, VkDeviceSize align, VkDeviceSize *offset)
{
    for (uint32_t i = 0; i < b->free_count; i++) {
        free_range *f = &b->free[i];
        VkDeviceSize start = (f->offset + align - 1) / align * align;
        if (start + bytes > f->offset + f->size) continue;
        /* Block offsets are aligned and sizes rounded, so start == f->offset always;
         * keep the general case anyway. */
        VkDeviceSize before = start - f->offset, after = f->offset + f->size - (start + bytes);
        if (before && after) continue; /* would split into two; never happens with rounded sizes */
        if (before) f->size = before;
        else if (after) { f->offset = start + bytes; f->size = after; }
        else {
            memmove(f, f + 1, (b->free_count - i - 1) * sizeof *f);
            b->free_count--;
        }
        *offset = start;
        return 1;
    }
    return 0;
}

static enn_status block_give(enn_block *b, VkDeviceSize offset, VkDeviceSize size)
{
    uint32_t i = 0;
    while (i < b->free_count && b->free[i].offset < offset) i++;
    /* Overlap with a neighbour means a double free or a corrupted list. */
    if ((i > 0 && b->free[i - 1].offset + b->free[i - 1].size > offset) ||
        (i < b->free_count && offset + size > b->free[i].offset))
        return enn_error(ENN_ERROR_INTERNAL, "buffer range freed twice");
    int merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == offset;
    int merge_next = i < b->free_count && offset + size == b->free[i].offset;
    if (merge_prev && merge_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], (b->free_count - i - 1) * sizeof *b->free);
        b->free_count--;
    } else if (merge_prev) {
        b->free[i - 1].size += size;
    } else if (merge_next) {
        b->free[i].offset = offset;
        b->free[i].size += size;
    } else {
        if (b->free_count == b->free_capacity) {
            free_range *f = realloc(b->free, 2 * b->free_capacity * sizeof *f);
            if (!f) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "growing a free list");
            b->free = f;
            b->free_capacity *= 2;
        }
        memmove(&b->free[i + 1], &b->free[i], (b->free_count - i) * sizeof *b->free);
        b->free[i] = (free_range){offset, size};
        b->free_count++;
    }
    return ENN_OK;
}

enn_status enn_buffer_create(enn_context *ctx, size_t bytes, enn_buffer **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_buffer_create: out is NULL");
    *out = NULL;
    if (!ctx) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_buffer_create: ctx is NULL");
    if (bytes == 0) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_buffer_create: size is zero");
    enn_allocator *a = ctx->allocator;
    /* Sizes near SIZE_MAX would wrap to 0 when rounded up; no device has that much. */
    if ((VkDeviceSize)bytes > a->max_allocation)
        return enn_error(ENN_ERROR_OUT_OF_DEVICE_MEMORY,
                         "a buffer of %zu bytes exceeds the device's largest allocation (%llu bytes)", bytes,
                         (unsigned long long)a->max_allocation);
    VkDeviceSize reserved = ((VkDeviceSize)bytes + a->alignment - 1) / a->alignment * a->alignment;
    enn_buffer *buf = calloc(1, sizeof *buf);
    if (!buf) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating a buffer record");
    enn_block *b = NULL;
    VkDeviceSize offset = 0;
    if (reserved <= ENN_BLOCK_BYTES / 2)
        for (b = a->blocks; b; b = b->next)
            if (b->size == ENN_BLOCK_BYTES && block_take(b, reserved, a->alignment, &offset)) break;
    if (!b) {
        VkDeviceSize size = reserved <= ENN_BLOCK_BYTES / 2 ? ENN_BLOCK_BYTES : reserved;
        enn_status s = block_create(ctx, size, &b);
        if (s != ENN_OK) { free(buf); return s; }
        block_take(b, reserved, a->alignment, &offset);
    }
    b->live++;
    buf->block = b;
    buf->vk_buffer = b->buffer;
    buf->offset = offset;
    buf->size = bytes;
    buf->reserved = reserved;
    buf->mapped = b->mapped ? (char *)b->mapped + offset : NULL;
    a->stats.used_bytes += reserved;
    a->stats.live_buffers++;
    if (a->stats.used_bytes > a->stats.peak_used_bytes) a->stats.peak_used_bytes = a->stats.used_bytes;
    *out = buf;
    return ENN_OK;
}

void enn_buffer_destroy(enn_context *ctx, enn_buffer *buf)
{
    if (!ctx || !buf) return;
    enn_allocator *a = ctx->allocator;
    /* Work already submitted may still use this range: let it finish first. */
    enn_context_wait_pending(ctx);
    enn_block *b = buf->block;
    block_give(b, buf->offset, buf->reserved);
    b->live--;
    a->stats.used_bytes -= buf->reserved;
    a->stats.live_buffers--;
    free(buf);
    if (b->live == 0) {
        /* Keep one standard empty block for reuse; release the rest. */
        int keep = b->size == ENN_BLOCK_BYTES;
        for (enn_block *o = a->blocks; o && keep; o = o->next)
            if (o != b && o->live == 0 && o->size == ENN_BLOCK_BYTES) keep = 0;
        if (!keep) {
            enn_block **pp = &a->blocks;
            while (*pp != b) pp = &(*pp)->next;
            *pp = b->next;
            a->stats.block_bytes -= b->size;
            a->stats.block_count--;
            block_free(ctx, b);
        }
    }
}

enn_status enn_buffer_alias(enn_context *ctx, const enn_buffer *buf, VkDeviceSize offset, VkDeviceSize size,
                            VkBuffer *out, VkDeviceSize *lead)
{
    *out = VK_NULL_HANDLE;
    if (!buf->block) return enn_error(ENN_ERROR_INTERNAL, "enn_buffer_alias: the buffer is not libenn's own");
    enn_block *b = buf->block;
    VkDeviceSize at = buf->offset + offset, align = ctx->allocator->memory_alignment;
    *lead = at % align;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = *lead + size,
                             .usage = buffer_usage(ctx), .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer alias;
    ENN_VK_TRY(vkCreateBuffer(ctx->device, &bi, ctx->vk_callbacks, &alias));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, alias, &req);
    VkResult r = VK_ERROR_UNKNOWN;
    if ((at - *lead) % req.alignment == 0 && at - *lead + req.size <= b->size &&
        (req.memoryTypeBits & (1u << ctx->allocator->memory_type)))
        r = vkBindBufferMemory(ctx->device, alias, b->memory, at - *lead);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(ctx->device, alias, ctx->vk_callbacks);
        return enn_error(ENN_ERROR_INTERNAL, "a buffer over bytes [%llu, +%llu) of a memory block cannot be bound (%s)",
                         (unsigned long long)at, (unsigned long long)size, enn_vk_result_name(r));
    }
    *out = alias;
    return ENN_OK;
}

size_t enn_buffer_size(const enn_buffer *buf) { return buf ? (size_t)buf->size : 0; }

enn_status enn_buffer_vulkan(const enn_buffer *buf, VkBuffer *buffer, VkDeviceSize *offset, VkDeviceSize *size)
{
    if (!buf) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_buffer_vulkan: buf is NULL");
    if (buffer) *buffer = buf->vk_buffer;
    if (offset) *offset = buf->offset;
    if (size) *size = buf->size;
    return ENN_OK;
}

enn_status enn_memory_get_stats(const enn_context *ctx, enn_memory_stats *out)
{
    if (!ctx || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_memory_get_stats: NULL argument");
    *out = ctx->allocator->stats;
    return ENN_OK;
}

void enn_memory_reset_peak(enn_context *ctx)
{
    if (ctx && ctx->allocator) ctx->allocator->stats.peak_used_bytes = ctx->allocator->stats.used_bytes;
}

uint64_t enn_memory_max_allocation(const enn_context *ctx)
{
    return ctx && ctx->allocator ? ctx->allocator->max_allocation : 0;
}
