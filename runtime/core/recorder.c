/* Recording and submission. See recorder.h for the contract.
 *
 * Barriers: the recorder keeps the buffer ranges read and written since the last
 * barrier. A command that reads a range written since then (read after write), or
 * writes a range read or written since then, gets one memory barrier before it, and the
 * sets start over. Independent commands get none, so the driver can overlap them.
 * Every submission ends with a barrier that makes its writes visible to later commands
 * and to the host, so later recordings and transfers need no knowledge of this one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/context.h"
#include "core/error.h"
#include "core/recorder.h"

typedef struct range {
    VkBuffer buffer;
    VkDeviceSize begin, end;
} range;

typedef struct range_set {
    range *items;
    uint32_t count, capacity;
} range_set;

typedef struct segment {
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool descriptors;  /* only without push descriptors */
    VkQueryPool queries;           /* only with timestamps */
    uint32_t dispatches;           /* dispatches and transfers recorded in it */
    uint32_t first_timed;          /* index into rec->timed of its first dispatch */
    uint32_t timed_count;
    int submitted;
    /* Texel-buffer views its dispatches bind, destroyed when the segment is reused
     * (its previous submission has then completed) or the recorder is destroyed. */
    VkBufferView *views;
    uint32_t view_count, view_capacity;
    /* ENN_EXACT_BINDINGS: the buffers its descriptor sets name, which go with the sets. */
    VkBuffer *aliases;
    uint32_t alias_count, alias_capacity;
} segment;

typedef struct timed_dispatch {
    char name[64];
    double gpu_ms;
} timed_dispatch;

/* Host-visible memory the recorder's transfers go through (enn_record_upload/readback). */
typedef struct host_area {
    VkBuffer buffer;
    VkDeviceMemory memory;
    unsigned char *mapped;
    VkDeviceSize size, used;
} host_area;

#define UNUSED_BINDING_BYTES 256

struct enn_recorder {
    enn_context *ctx;
    enn_buffer *unused;            /* what enn_record_unused_binding hands out, made once */
    host_area area;                /* the current staging area */
    host_area *retired;            /* areas outgrown during a recording, freed at the next begin */
    uint32_t retired_count;
    VkCommandPool pool;
    segment *segs;
    uint32_t seg_count, seg_capacity;
    int recording;                 /* a segment is open */
    uint32_t current;              /* index of the open (or last) segment */
    uint32_t cap;                  /* commands per segment */
    int timestamps, timestamps_next;
    range_set reads, writes;
    timed_dispatch *timed;
    uint32_t timed_count, timed_capacity;
    enn_timing *timings;
    uint32_t timing_count;
    enn_recorder_stats stats;
    /* External mode (enn_recorder_begin_external): segment 0's command buffer is
     * swapped for the caller's while it lasts; own_cmd keeps ours. */
    int external;
    VkCommandBuffer own_cmd;
    double begin_s;   /* when enn_recorder_begin was called (CLOCK_MONOTONIC) */
    /* Without push descriptors, external recording k uses segment k's descriptor pool
     * and sets ext_events[k] when it has run; ext_waiting[k]: recorded, not yet seen
     * run. Slots are taken in turn from ext_next. */
    VkEvent ext_events[ENN_EXTERNAL_SLOTS];
    int ext_waiting[ENN_EXTERNAL_SLOTS];
    uint32_t ext_next;
    /* External recordings' texel views, kept while the recorder lives: the caller may
     * still hold (and submit) an earlier recording whose push-descriptor writes name
     * them. Found again by buffer, range and format; a stream binds the same ranges
     * every step, so the set stays as small as one step's views. */
    struct kept_view {
        VkBuffer buffer;
        VkDeviceSize offset, range;
        VkFormat format;
        VkBufferView view;
    } *kept;
    uint32_t kept_count, kept_capacity;
    /* The context's live recorders (enn_context_destroy releases what any left behind
     * holds on the device). */
    enn_recorder *prev_live, *next_live;
    int released;                  /* its Vulkan objects are gone (the context went first) */
};

static enn_status set_add(range_set *s, range r)
{
    if (s->count == s->capacity) {
        uint32_t cap = s->capacity ? s->capacity * 2 : 64;
        range *items = realloc(s->items, cap * sizeof *items);
        if (!items) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder hazard set");
        s->items = items;
        s->capacity = cap;
    }
    s->items[s->count++] = r;
    return ENN_OK;
}

static int set_overlaps(const range_set *s, range r)
{
    for (uint32_t i = 0; i < s->count; i++)
        if (s->items[i].buffer == r.buffer && s->items[i].begin < r.end && r.begin < s->items[i].end) return 1;
    return 0;
}

enn_status enn_recorder_create(enn_context *ctx, enn_recorder **out)
{
    if (!ctx || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_create: NULL argument");
    enn_recorder *rec = calloc(1, sizeof *rec);
    if (!rec) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder");
    rec->ctx = ctx;
    rec->cap = ctx->max_dispatches_per_submit;
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .queueFamilyIndex = ctx->queue_family};
    VkResult r = vkCreateCommandPool(ctx->device, &pci, ctx->vk_callbacks, &rec->pool);
    if (r != VK_SUCCESS) { free(rec); return enn_vk_error(r, "vkCreateCommandPool"); }
    rec->next_live = ctx->recorders;
    if (ctx->recorders) ctx->recorders->prev_live = rec;
    ctx->recorders = rec;
    *out = rec;
    return ENN_OK;
}

/* The host blocks once per wait, however many segments it covers (nothing is submitted
 * between the segments' fence waits), and only for segments nobody has waited for yet:
 * those still on the context's pending list (enn_context_wait_pending empties it). */
static void count_host_wait(enn_recorder *rec, uint32_t end)
{
    enn_context *ctx = rec->ctx;
    for (uint32_t i = 0; i < end && i < rec->seg_count; i++) {
        if (!rec->segs[i].submitted) continue;
        for (uint32_t k = 0; k < ctx->pending_count; k++)
            if (ctx->pending_fences[k] == rec->segs[i].fence) {
                ctx->host_waits++;
                return;
            }
    }
}

/* Waits for every submitted segment. Each is waited for and forgotten even after a
 * failed wait (a lost device), so the recorder can still be reused or destroyed; the
 * first failure is returned. */
static enn_status wait_segments(enn_recorder *rec)
{
    enn_status st = ENN_OK;
    count_host_wait(rec, rec->seg_count);
    for (uint32_t i = 0; i < rec->seg_count; i++)
        if (rec->segs[i].submitted) {
            VkResult r = vkWaitForFences(rec->ctx->device, 1, &rec->segs[i].fence, VK_TRUE, UINT64_MAX);
            if (r != VK_SUCCESS && st == ENN_OK) st = enn_context_vk_error(rec->ctx, r, "vkWaitForFences (earlier recording)");
            enn_context_untrack_fence(rec->ctx, rec->segs[i].fence);
            rec->segs[i].submitted = 0;
        }
    return st;
}

static void drop_views(enn_context *ctx, segment *s)
{
    for (uint32_t i = 0; i < s->view_count; i++) vkDestroyBufferView(ctx->device, s->views[i], ctx->vk_callbacks);
    s->view_count = 0;
    for (uint32_t i = 0; i < s->alias_count; i++) vkDestroyBuffer(ctx->device, s->aliases[i], ctx->vk_callbacks);
    s->alias_count = 0;
}

static void area_free(enn_context *ctx, host_area *a)
{
    if (a->mapped) vkUnmapMemory(ctx->device, a->memory);
    if (a->buffer) vkDestroyBuffer(ctx->device, a->buffer, ctx->vk_callbacks);
    if (a->memory) vkFreeMemory(ctx->device, a->memory, ctx->vk_callbacks);
    memset(a, 0, sizeof *a);
}

static void free_retired(enn_recorder *rec)
{
    for (uint32_t i = 0; i < rec->retired_count; i++) area_free(rec->ctx, &rec->retired[i]);
    free(rec->retired);
    rec->retired = NULL;
    rec->retired_count = 0;
}

static void recorder_release(enn_recorder *rec);

void enn_recorder_destroy(enn_recorder *rec)
{
    if (!rec) return;
    recorder_release(rec);
    free(rec->segs);
    free(rec->reads.items);
    free(rec->writes.items);
    free(rec->timed);
    free(rec->timings);
    free(rec);
}

/* Everything the recorder holds on the device, and its place in the context's list. */
static void recorder_release(enn_recorder *rec)
{
    if (rec->released) return;
    rec->released = 1;
    enn_context *ctx = rec->ctx;
    if (rec->prev_live) rec->prev_live->next_live = rec->next_live;
    else ctx->recorders = rec->next_live;
    if (rec->next_live) rec->next_live->prev_live = rec->prev_live;
    VkDevice dev = ctx->device;
    if (rec->external) {
        /* The caller's command buffer is the caller's to end or drop. */
        rec->segs[rec->current].cmd = rec->own_cmd;
        rec->external = rec->recording = 0;
    }
    for (uint32_t k = 0; k < ENN_EXTERNAL_SLOTS; k++)
        if (rec->ext_events[k]) vkDestroyEvent(dev, rec->ext_events[k], ctx->vk_callbacks);
    if (rec->recording) {
        /* An unsubmitted segment is simply dropped (its pool goes below): a failed end
         * changes nothing. */
        (void)vkEndCommandBuffer(rec->segs[rec->current].cmd);
        rec->recording = 0;
    }
    (void)wait_segments(rec);   /* nothing to report to: the recorder goes either way */
    for (uint32_t i = 0; i < rec->seg_count; i++) {
        segment *s = &rec->segs[i];
        if (s->fence) vkDestroyFence(dev, s->fence, ctx->vk_callbacks);
        if (s->descriptors) vkDestroyDescriptorPool(dev, s->descriptors, ctx->vk_callbacks);
        if (s->queries) vkDestroyQueryPool(dev, s->queries, ctx->vk_callbacks);
        drop_views(rec->ctx, s);
        free(s->views);
        free(s->aliases);
    }
    for (uint32_t k = 0; k < rec->kept_count; k++) vkDestroyBufferView(dev, rec->kept[k].view, ctx->vk_callbacks);
    free(rec->kept);
    vkDestroyCommandPool(dev, rec->pool, ctx->vk_callbacks);
    if (rec->unused) enn_buffer_destroy(rec->ctx, rec->unused);
    free_retired(rec);
    area_free(rec->ctx, &rec->area);
}

void enn_recorders_release(enn_context *ctx)
{
    while (ctx->recorders) recorder_release(ctx->recorders);
}

void enn_recorder_set_timestamps(enn_recorder *rec, int on)
{
    if (rec) rec->timestamps_next = on && rec->ctx->enabled.timestamps;
}

static enn_status segment_make(enn_recorder *rec, segment *s)
{
    enn_context *ctx = rec->ctx;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = rec->pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    ENN_VK_TRY(vkAllocateCommandBuffers(ctx->device, &ai, &s->cmd));
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    ENN_VK_TRY(vkCreateFence(ctx->device, &fi, ctx->vk_callbacks, &s->fence));
    if (!ctx->enabled.push_descriptors) {
        VkDescriptorPoolSize sizes[3] = {
            {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = rec->cap * ENN_MAX_BINDINGS},
            {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, .descriptorCount = rec->cap * ENN_MAX_BINDINGS},
            {.type = VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER, .descriptorCount = rec->cap * ENN_MAX_BINDINGS}};
        VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = rec->cap, .poolSizeCount = 3, .pPoolSizes = sizes};
        ENN_VK_TRY(vkCreateDescriptorPool(ctx->device, &pi, ctx->vk_callbacks, &s->descriptors));
    }
    return ENN_OK;
}

/* A segment's command buffer, fence and descriptor pool. The segment is counted (and so
 * released) only once all exist: on a failure, what was made is undone here, or the
 * fence would be lost when the slot is made again. */
static enn_status segment_init(enn_recorder *rec, segment *s)
{
    enn_status st = segment_make(rec, s);
    if (st != ENN_OK) {
        enn_context *ctx = rec->ctx;
        if (s->descriptors) vkDestroyDescriptorPool(ctx->device, s->descriptors, ctx->vk_callbacks);
        if (s->fence) vkDestroyFence(ctx->device, s->fence, ctx->vk_callbacks);
        if (s->cmd) vkFreeCommandBuffers(ctx->device, rec->pool, 1, &s->cmd);
        memset(s, 0, sizeof *s);
    }
    return st;
}

static enn_status segment_open(enn_recorder *rec)
{
    uint32_t index = rec->recording || rec->stats.submits ? rec->current + 1 : 0;
    if (index == rec->seg_capacity) {
        uint32_t cap = rec->seg_capacity ? rec->seg_capacity * 2 : 4;
        segment *segs = realloc(rec->segs, cap * sizeof *segs);
        if (!segs) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder segments");
        memset(segs + rec->seg_capacity, 0, (cap - rec->seg_capacity) * sizeof *segs);
        rec->segs = segs;
        rec->seg_capacity = cap;
    }
    if (index == rec->seg_count) {
        ENN_TRY(segment_init(rec, &rec->segs[index]));
        rec->seg_count++;
    }
    segment *s = &rec->segs[index];
    if (rec->timestamps && !s->queries) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2 * rec->cap};
        ENN_VK_TRY(vkCreateQueryPool(rec->ctx->device, &qi, rec->ctx->vk_callbacks, &s->queries));
    }
    if (s->descriptors) ENN_VK_TRY(vkResetDescriptorPool(rec->ctx->device, s->descriptors, 0));
    drop_views(rec->ctx, s);
    ENN_VK_TRY(vkResetFences(rec->ctx->device, 1, &s->fence));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    ENN_VK_TRY(vkBeginCommandBuffer(s->cmd, &bi));
    if (rec->timestamps) vkCmdResetQueryPool(s->cmd, s->queries, 0, 2 * rec->cap);
    s->dispatches = 0;
    s->first_timed = rec->timed_count;
    s->timed_count = 0;
    rec->current = index;
    rec->recording = 1;
    rec->reads.count = rec->writes.count = 0;
    return ENN_OK;
}

/* Ends and submits the open segment. */
static enn_status segment_close(enn_recorder *rec)
{
    segment *s = &rec->segs[rec->current];
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT | VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    rec->recording = 0;
    ENN_VK_TRY(vkEndCommandBuffer(s->cmd));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &s->cmd};
    VkResult r = enn_context_submit(rec->ctx, &si, s->fence);
    /* The spec counts a submission that returned VK_ERROR_DEVICE_LOST as pending until a
     * wait on its fence returns (then complete, whatever the wait returned): its fence
     * and command buffer are waited for like any other before they are destroyed. */
    if (r != VK_SUCCESS && r != VK_ERROR_DEVICE_LOST) return enn_vk_error(r, "vkQueueSubmit");
    s->submitted = 1;
    rec->stats.submits++;
    enn_status tracked = enn_context_track_fence(rec->ctx, s->fence);
    return r == VK_SUCCESS ? tracked : enn_context_vk_error(rec->ctx, r, "vkQueueSubmit");
}

static double monotonic_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

enn_status enn_recorder_begin(enn_recorder *rec)
{
    if (!rec) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_begin: rec is NULL");
    if (rec->recording) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_begin: already recording");
    ENN_TRY(enn_context_usable(rec->ctx));
    ENN_TRY(wait_segments(rec));
    free_retired(rec);
    rec->area.used = 0;
    /* External recordings' descriptor sets live in their slots' pools: reset below. */
    ENN_VK_TRY(vkResetCommandPool(rec->ctx->device, rec->pool, 0));
    rec->stats = (enn_recorder_stats){0};
    rec->timed_count = 0;
    rec->timing_count = 0;
    rec->timestamps = rec->timestamps_next;
    rec->current = 0;
    rec->begin_s = monotonic_seconds();
    return segment_open(rec);
}

/* Opens the next segment when the open one is full; ensures one is open. */
static enn_status make_room(enn_recorder *rec)
{
    if (!rec->recording) {
        if (rec->stats.submits == 0 && rec->stats.dispatches == 0 && rec->stats.transfers == 0 && !rec->seg_count)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "record called before enn_recorder_begin");
        return segment_open(rec);
    }
    if (rec->segs[rec->current].dispatches >= rec->cap) {
        /* The caller's buffer is never split: push descriptors need no room, pool
         * descriptor sets do. */
        if (rec->external) {
            if (!rec->ctx->enabled.push_descriptors)
                return enn_error(ENN_ERROR_UNSUPPORTED, "recording into the caller's command buffer: more than %u "
                                 "commands need push descriptors (VK_KHR_push_descriptor, not enabled on this "
                                 "context's device) or a larger enn_context_options.max_dispatches_per_submit",
                                 rec->cap);
            return ENN_OK;
        }
        ENN_TRY(segment_close(rec));
        ENN_TRY(segment_open(rec));
    }
    return ENN_OK;
}

enn_status enn_record_unused_binding(enn_recorder *rec, enn_binding *out)
{
    if (!rec->unused) ENN_TRY(enn_buffer_create(rec->ctx, UNUSED_BINDING_BYTES, &rec->unused));
    *out = (enn_binding){rec->unused, 0, UNUSED_BINDING_BYTES, ENN_ACCESS_READ_WRITE};
    return ENN_OK;
}

static void emit_barrier(enn_recorder *rec)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(rec->segs[rec->current].cmd, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
    rec->reads.count = rec->writes.count = 0;
    rec->stats.barriers++;
}

/* Inserts a barrier if any access conflicts with those since the last one, then notes them. */
static enn_status track(enn_recorder *rec, const range *r, const enn_access *acc, uint32_t n)
{
    int need = 0;
    for (uint32_t i = 0; i < n && !need; i++) {
        if ((acc[i] & ENN_ACCESS_READ) && set_overlaps(&rec->writes, r[i])) need = 1;
        if ((acc[i] & ENN_ACCESS_WRITE) && (set_overlaps(&rec->writes, r[i]) || set_overlaps(&rec->reads, r[i]))) need = 1;
    }
    if (need) emit_barrier(rec);
    for (uint32_t i = 0; i < n; i++) {
        if (acc[i] & ENN_ACCESS_READ) ENN_TRY(set_add(&rec->reads, r[i]));
        if (acc[i] & ENN_ACCESS_WRITE) ENN_TRY(set_add(&rec->writes, r[i]));
    }
    return ENN_OK;
}

static enn_status note_timed(enn_recorder *rec, const char *name)
{
    if (rec->timed_count == rec->timed_capacity) {
        uint32_t cap = rec->timed_capacity ? rec->timed_capacity * 2 : 256;
        timed_dispatch *t = realloc(rec->timed, cap * sizeof *t);
        if (!t) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "timestamp records");
        rec->timed = t;
        rec->timed_capacity = cap;
    }
    timed_dispatch *t = &rec->timed[rec->timed_count++];
    snprintf(t->name, sizeof t->name, "%s", name ? name : "?");
    t->gpu_ms = 0;
    rec->segs[rec->current].timed_count++;
    return ENN_OK;
}

static enn_status resolve_range(const char *what, const enn_buffer *b, VkDeviceSize offset, VkDeviceSize size,
                                range *out)
{
    if (!b) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: buffer is NULL", what);
    if (size == 0) size = offset < b->size ? b->size - offset : 0;
    if (size == 0 || offset > b->size || size > b->size - offset)
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "%s: range [%llu, +%llu) outside a buffer of %llu bytes", what,
                         (unsigned long long)offset, (unsigned long long)size, (unsigned long long)b->size);
    *out = (range){b->vk_buffer, b->offset + offset, b->offset + offset + size};
    return ENN_OK;
}

static uint32_t texel_bytes(VkFormat f)
{
    switch (f) {
    case VK_FORMAT_R32_SFLOAT: return 4;
    case VK_FORMAT_R32G32B32A32_SFLOAT:
    case VK_FORMAT_R32G32B32A32_UINT: return 16;
    default: return 0;
    }
}

/* A view of binding i's range for a texel-buffer binding of the open segment. The view
 * covers whole texels: the range rounded up, which stays inside the buffer's own
 * reservation (a vec4 view of a matrix whose span ends mid-texel). */
static enn_status make_view(enn_recorder *rec, const char *label, uint32_t i, const enn_binding *b, const range *r,
                            VkFormat format, int storage, VkBufferView *out)
{
    enn_context *ctx = rec->ctx;
    uint32_t tb = texel_bytes(format);
    if (!tb) return enn_error(ENN_ERROR_INTERNAL, "%s: binding %u has texel format %d, which libenn does not view",
                              label, i, (int)format);
    VkDeviceSize bytes = (r->end - r->begin + tb - 1) / tb * tb;
    if (!(storage ? ctx->caps.storage_texel_buffer_f32 : ctx->caps.texel_buffer_f32) || r->begin % ctx->caps.min_texel_buffer_offset_alignment ||
        r->begin + bytes > b->buffer->offset + b->buffer->reserved ||
        bytes / tb > ctx->caps.max_texel_buffer_elements)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: binding %u ([%llu, +%llu) of its buffer) cannot be a texel buffer "
                         "of %u-byte texels here (at most %u texels, offsets multiples of %u)", label, i,
                         (unsigned long long)(r->begin - b->buffer->offset), (unsigned long long)(r->end - r->begin), tb,
                         ctx->caps.max_texel_buffer_elements, ctx->caps.min_texel_buffer_offset_alignment);
    VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO, .buffer = r->buffer,
                                 .format = format, .offset = r->begin, .range = bytes};
    if (rec->external) {
        for (uint32_t k = 0; k < rec->kept_count; k++) {
            const struct kept_view *v = &rec->kept[k];
            if (v->buffer == r->buffer && v->offset == r->begin && v->range == bytes && v->format == format) {
                *out = v->view;
                return ENN_OK;
            }
        }
        if (rec->kept_count == rec->kept_capacity) {
            uint32_t cap = rec->kept_capacity ? rec->kept_capacity * 2 : 32;
            struct kept_view *v = realloc(rec->kept, cap * sizeof *v);
            if (!v) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder buffer views");
            rec->kept = v;
            rec->kept_capacity = cap;
        }
        ENN_VK_TRY(vkCreateBufferView(ctx->device, &vi, ctx->vk_callbacks, out));
        rec->kept[rec->kept_count++] = (struct kept_view){r->buffer, r->begin, bytes, format, *out};
        return ENN_OK;
    }
    segment *s = &rec->segs[rec->current];
    if (s->view_count == s->view_capacity) {
        uint32_t cap = s->view_capacity ? s->view_capacity * 2 : 64;
        VkBufferView *v = realloc(s->views, cap * sizeof *v);
        if (!v) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder buffer views");
        s->views = v;
        s->view_capacity = cap;
    }
    ENN_VK_TRY(vkCreateBufferView(ctx->device, &vi, ctx->vk_callbacks, out));
    s->views[s->view_count++] = *out;
    return ENN_OK;
}

/* ENN_EXACT_BINDINGS: points a storage descriptor at a buffer of just its range. */
static enn_status bind_exact(enn_recorder *rec, segment *s, const enn_binding *b, VkDescriptorBufferInfo *info)
{
    if (!b->buffer->block) return ENN_OK; /* a caller's buffer (a stream's input and output) stays as bound */
    if (s->alias_count == s->alias_capacity) {
        uint32_t cap = s->alias_capacity ? s->alias_capacity * 2 : 64;
        VkBuffer *a = realloc(s->aliases, cap * sizeof *a);
        if (!a) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder exact bindings");
        s->aliases = a;
        s->alias_capacity = cap;
    }
    VkDeviceSize lead;
    ENN_TRY(enn_buffer_alias(rec->ctx, b->buffer, info->offset - b->buffer->offset, info->range,
                             &s->aliases[s->alias_count], &lead));
    info->buffer = s->aliases[s->alias_count++];
    info->offset = lead;
    return ENN_OK;
}

enn_status enn_record_dispatch(enn_recorder *rec, const enn_pipeline *pipe, const enn_binding *bindings,
                               uint32_t n, const void *push, uint32_t gx, uint32_t gy, uint32_t gz,
                               const char *name)
{
    if (!rec || !pipe) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_dispatch: NULL argument");
    enn_context *ctx = rec->ctx;
    const char *label = name ? name : pipe->shader;
    if (n != pipe->num_buffers)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %u buffers bound, the kernel takes %u", label, n, pipe->num_buffers);
    if (n && !bindings) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: bindings is NULL", label);
    if (pipe->push_size && !push)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: push constants missing", label);
    if (!gx || !gy || !gz || gx > ctx->caps.max_workgroup_count[0] || gy > ctx->caps.max_workgroup_count[1] ||
        gz > ctx->caps.max_workgroup_count[2])
        return enn_error(ENN_ERROR_OUT_OF_RANGE, "%s: %u x %u x %u workgroups, the device allows 1..%u x %u x %u",
                         label, gx, gy, gz, ctx->caps.max_workgroup_count[0], ctx->caps.max_workgroup_count[1],
                         ctx->caps.max_workgroup_count[2]);
    range ranges[ENN_MAX_BINDINGS];
    enn_access acc[ENN_MAX_BINDINGS];
    VkDescriptorBufferInfo infos[ENN_MAX_BINDINGS];
    VkWriteDescriptorSet writes[ENN_MAX_BINDINGS];
    for (uint32_t i = 0; i < n; i++) {
        ENN_TRY(resolve_range(label, bindings[i].buffer, bindings[i].offset, bindings[i].size, &ranges[i]));
        VkDeviceSize size = ranges[i].end - ranges[i].begin;
        int storage = pipe->texel_formats[i] == VK_FORMAT_UNDEFINED;  /* texel views: checked by make_view */
        if (storage && size > ctx->caps.max_storage_buffer_range)
            return enn_error(ENN_ERROR_UNSUPPORTED, "%s: binding %u covers %llu bytes; the device binds at most %llu",
                             label, i, (unsigned long long)size, (unsigned long long)ctx->caps.max_storage_buffer_range);
        if (storage && ranges[i].begin % ctx->caps.min_storage_buffer_offset_alignment)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: binding %u starts at byte %llu, not a multiple of %u",
                             label, i, (unsigned long long)bindings[i].offset, ctx->caps.min_storage_buffer_offset_alignment);
        acc[i] = bindings[i].access;
        infos[i] = (VkDescriptorBufferInfo){ranges[i].buffer, ranges[i].begin, size};
        writes[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstBinding = i,
                                           .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                           .pBufferInfo = &infos[i]};
    }
    ENN_TRY(make_room(rec));
    segment *s = &rec->segs[rec->current];
    VkBufferView views[ENN_MAX_BINDINGS];
    for (uint32_t i = 0; i < n; i++) {
        if (pipe->texel_formats[i] == VK_FORMAT_UNDEFINED) {
            if (ctx->exact_bindings && !pipe->push_descriptors) ENN_TRY(bind_exact(rec, s, &bindings[i], &infos[i]));
            continue;
        }
        VkDescriptorType type = enn_pipeline_descriptor_type(pipe, i);
        ENN_TRY(make_view(rec, label, i, &bindings[i], &ranges[i], pipe->texel_formats[i],
                          type == VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER, &views[i]));
        writes[i].descriptorType = type;
        writes[i].pBufferInfo = NULL;
        writes[i].pTexelBufferView = &views[i];
    }
    ENN_TRY(track(rec, ranges, acc, n));
    vkCmdBindPipeline(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
    if (pipe->push_descriptors) {
        ctx->cmd_push_descriptor_set(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, n, writes);
    } else {
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = s->descriptors, .descriptorSetCount = 1,
                                          .pSetLayouts = &pipe->set_layout};
        VkDescriptorSet set;
        ENN_VK_TRY(vkAllocateDescriptorSets(ctx->device, &ai, &set));
        for (uint32_t i = 0; i < n; i++) writes[i].dstSet = set;
        vkUpdateDescriptorSets(ctx->device, n, writes, 0, NULL);
        vkCmdBindDescriptorSets(s->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, 1, &set, 0, NULL);
    }
    if (pipe->push_size)
        vkCmdPushConstants(s->cmd, pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, pipe->push_size, push);
    if (rec->timestamps) {
        vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s->queries, 2 * s->timed_count);
        vkCmdDispatch(s->cmd, gx, gy, gz);
        vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->queries, 2 * s->timed_count + 1);
        ENN_TRY(note_timed(rec, label));
    } else {
        vkCmdDispatch(s->cmd, gx, gy, gz);
    }
    s->dispatches++;
    rec->stats.dispatches++;
    return ENN_OK;
}

enn_status enn_record_fill(enn_recorder *rec, const enn_buffer *buf, VkDeviceSize offset, VkDeviceSize size,
                           uint32_t value)
{
    if (!rec) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_fill: rec is NULL");
    range r;
    ENN_TRY(resolve_range("enn_record_fill", buf, offset, size, &r));
    if (r.begin % 4 || (r.end - r.begin) % 4)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_fill: offset and size must be multiples of 4");
    ENN_TRY(make_room(rec));
    enn_access a = ENN_ACCESS_WRITE;
    ENN_TRY(track(rec, &r, &a, 1));
    vkCmdFillBuffer(rec->segs[rec->current].cmd, r.buffer, r.begin, r.end - r.begin, value);
    rec->segs[rec->current].dispatches++;
    rec->stats.transfers++;
    return ENN_OK;
}

enn_status enn_record_copy(enn_recorder *rec, const enn_buffer *src, VkDeviceSize src_offset,
                           const enn_buffer *dst, VkDeviceSize dst_offset, VkDeviceSize size)
{
    if (!rec) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_copy: rec is NULL");
    if (!size) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_copy: size is zero");
    range r[2];
    ENN_TRY(resolve_range("enn_record_copy (source)", src, src_offset, size, &r[0]));
    ENN_TRY(resolve_range("enn_record_copy (destination)", dst, dst_offset, size, &r[1]));
    if (r[0].buffer == r[1].buffer && r[0].begin < r[1].end && r[1].begin < r[0].end)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_copy: source and destination overlap");
    ENN_TRY(make_room(rec));
    enn_access a[2] = {ENN_ACCESS_READ, ENN_ACCESS_WRITE};
    ENN_TRY(track(rec, r, a, 2));
    VkBufferCopy region = {r[0].begin, r[1].begin, size};
    vkCmdCopyBuffer(rec->segs[rec->current].cmd, r[0].buffer, r[1].buffer, 1, &region);
    rec->segs[rec->current].dispatches++;
    rec->stats.transfers++;
    return ENN_OK;
}

/* `bytes` of the staging area, 16-byte aligned; a larger area replaces a full one (the
 * old one stays alive until the next begin: this recording's copies still use it). The
 * new one holds twice all this recording has staged, so that the next recording of the
 * same step fits in it: sized from the one request alone, a step that stages two inputs
 * and a readback outgrew it, and allocated a new area, every step. */
static enn_status area_take(enn_recorder *rec, VkDeviceSize bytes, VkBuffer *buffer, VkDeviceSize *offset,
                            unsigned char **host)
{
    enn_context *ctx = rec->ctx;
    VkDeviceSize need = (bytes + 15) / 16 * 16;
    if (rec->area.used + need > rec->area.size) {
        VkDeviceSize staged = rec->area.used + need;
        for (uint32_t i = 0; i < rec->retired_count; i++) staged += rec->retired[i].used;
        if (rec->area.buffer) {
            host_area *r = realloc(rec->retired, (rec->retired_count + 1) * sizeof *r);
            if (!r) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder staging");
            rec->retired = r;
            rec->retired[rec->retired_count++] = rec->area;
            memset(&rec->area, 0, sizeof rec->area);
        }
        host_area a = {.size = staged * 2 > ((VkDeviceSize)1 << 20) ? staged * 2 : ((VkDeviceSize)1 << 20)};
        VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = a.size,
                                 .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                 .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
        VkResult r = vkCreateBuffer(ctx->device, &bi, ctx->vk_callbacks, &a.buffer);
        if (r != VK_SUCCESS) return enn_vk_error(r, "vkCreateBuffer (recorder staging)");
        VkMemoryRequirements req;
        vkGetBufferMemoryRequirements(ctx->device, a.buffer, &req);
        uint32_t type;
        VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        if (!enn_find_memory_type(ctx, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, &type) &&
            !enn_find_memory_type(ctx, req.memoryTypeBits, hv, &type)) {
            area_free(ctx, &a);
            return enn_error(ENN_ERROR_UNSUPPORTED, "the device has no host-visible coherent memory for staging");
        }
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                   .memoryTypeIndex = type};
        r = vkAllocateMemory(ctx->device, &ai, ctx->vk_callbacks, &a.memory);
        if (r != VK_SUCCESS) {
            area_free(ctx, &a);
            return enn_vk_allocation_error(r, "a recording's staging area", (unsigned long long)req.size);
        }
        r = vkBindBufferMemory(ctx->device, a.buffer, a.memory, 0);
        if (r == VK_SUCCESS) r = vkMapMemory(ctx->device, a.memory, 0, VK_WHOLE_SIZE, 0, (void **)&a.mapped);
        if (r != VK_SUCCESS) {
            area_free(ctx, &a);
            return enn_vk_error(r, "recorder staging memory");
        }
        rec->area = a;
        rec->stats.staging_areas++;
    }
    *buffer = rec->area.buffer;
    *offset = rec->area.used;
    *host = rec->area.mapped + rec->area.used;
    rec->area.used += need;
    return ENN_OK;
}

enn_status enn_record_upload(enn_recorder *rec, const enn_buffer *dst, VkDeviceSize offset, const void *src,
                             VkDeviceSize bytes)
{
    if (!rec || !src) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_upload: NULL argument");
    range r;
    ENN_TRY(resolve_range("enn_record_upload", dst, offset, bytes, &r));
    if (!bytes) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_upload: size is zero");
    if (dst->mapped) {
        /* Nothing recorded so far has run yet; only other recordings could touch dst. */
        ENN_TRY(enn_context_wait_pending(rec->ctx));
        memcpy((unsigned char *)dst->mapped + offset, src, bytes);
        return ENN_OK;
    }
    VkBuffer staging;
    VkDeviceSize at;
    unsigned char *host;
    ENN_TRY(area_take(rec, bytes, &staging, &at, &host));
    memcpy(host, src, bytes);
    ENN_TRY(make_room(rec));
    enn_access a = ENN_ACCESS_WRITE;
    ENN_TRY(track(rec, &r, &a, 1));
    VkBufferCopy region = {at, r.begin, bytes};
    vkCmdCopyBuffer(rec->segs[rec->current].cmd, staging, r.buffer, 1, &region);
    rec->segs[rec->current].dispatches++;
    rec->stats.transfers++;
    return ENN_OK;
}

enn_status enn_record_readback(enn_recorder *rec, const enn_buffer *src, VkDeviceSize offset, VkDeviceSize bytes,
                               const void **host)
{
    if (!rec || !host) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_readback: NULL argument");
    range r;
    ENN_TRY(resolve_range("enn_record_readback", src, offset, bytes, &r));
    if (!bytes) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_record_readback: size is zero");
    if (src->mapped) {
        /* The segment's closing barrier makes the device's writes visible to the host. */
        *host = (const unsigned char *)src->mapped + offset;
        return ENN_OK;
    }
    VkBuffer staging;
    VkDeviceSize at;
    unsigned char *dst;
    ENN_TRY(area_take(rec, bytes, &staging, &at, &dst));
    ENN_TRY(make_room(rec));
    enn_access a = ENN_ACCESS_READ;
    ENN_TRY(track(rec, &r, &a, 1));
    VkBufferCopy region = {r.begin, at, bytes};
    vkCmdCopyBuffer(rec->segs[rec->current].cmd, r.buffer, staging, 1, &region);
    rec->segs[rec->current].dispatches++;
    rec->stats.transfers++;
    *host = dst;
    return ENN_OK;
}

enn_status enn_recorder_submit(enn_recorder *rec)
{
    if (!rec) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_submit: rec is NULL");
    if (rec->external)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_submit: the recording is in the caller's command "
                         "buffer (end it with enn_recorder_end_external; the caller submits)");
    if (!rec->recording) return ENN_OK;
    ENN_TRY(segment_close(rec));
    rec->stats.record_ms = (monotonic_seconds() - rec->begin_s) * 1e3;
    return ENN_OK;
}

static enn_status add_timing(enn_recorder *rec, const timed_dispatch *t)
{
    for (uint32_t i = 0; i < rec->timing_count; i++)
        if (!strcmp(rec->timings[i].name, t->name)) {
            rec->timings[i].gpu_ms += t->gpu_ms;
            rec->timings[i].count++;
            return ENN_OK;
        }
    enn_timing *tm = realloc(rec->timings, (rec->timing_count + 1) * sizeof *tm);
    if (!tm) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "timings");
    rec->timings = tm;
    enn_timing *e = &tm[rec->timing_count++];
    snprintf(e->name, sizeof e->name, "%s", t->name);
    e->gpu_ms = t->gpu_ms;
    e->count = 1;
    return ENN_OK;
}

enn_status enn_recorder_wait(enn_recorder *rec)
{
    if (!rec) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_wait: rec is NULL");
    enn_context *ctx = rec->ctx;
    uint32_t last = rec->stats.submits;
    count_host_wait(rec, last);
    for (uint32_t i = 0; i < rec->seg_count && i < last; i++) {
        segment *s = &rec->segs[i];
        if (!s->submitted) continue;
        VkResult r = vkWaitForFences(ctx->device, 1, &s->fence, VK_TRUE, UINT64_MAX);
        if (r != VK_SUCCESS) return enn_context_vk_error(ctx, r, "vkWaitForFences (recording)");
        enn_context_untrack_fence(ctx, s->fence);
        s->submitted = 0;
        if (rec->timestamps && s->timed_count) {
            uint64_t *ticks = malloc(2 * s->timed_count * sizeof *ticks);
            if (!ticks) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "timestamps");
            r = vkGetQueryPoolResults(ctx->device, s->queries, 0, 2 * s->timed_count, 2 * s->timed_count * 8, ticks, 8,
                                      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
            if (r != VK_SUCCESS) { free(ticks); return enn_context_vk_error(ctx, r, "vkGetQueryPoolResults"); }
            for (uint32_t k = 0; k < s->timed_count; k++) {
                timed_dispatch *t = &rec->timed[s->first_timed + k];
                uint64_t a = ticks[2 * k], b = ticks[2 * k + 1];
                t->gpu_ms = b > a ? (double)(b - a) * ctx->caps.timestamp_period_ns * 1e-6 : 0.0;
                enn_status st = add_timing(rec, t);
                if (st != ENN_OK) { free(ticks); return st; }
            }
            free(ticks);
        }
    }
    return ENN_OK;
}

void enn_recorder_abort(enn_recorder *rec)
{
    if (!rec || !rec->recording || rec->external) return;
    /* The recording is dropped: the next begin resets the command pool, so a failed end
     * changes nothing. */
    (void)vkEndCommandBuffer(rec->segs[rec->current].cmd);
    rec->recording = 0;
}

enn_status enn_recorder_run(enn_recorder *rec)
{
    ENN_TRY(enn_recorder_submit(rec));
    return enn_recorder_wait(rec);
}

enn_recorder_stats enn_recorder_get_stats(const enn_recorder *rec)
{
    return rec ? rec->stats : (enn_recorder_stats){0};
}

uint32_t enn_recorder_timings(const enn_recorder *rec, const enn_timing **out)
{
    if (out) *out = rec ? rec->timings : NULL;
    return rec ? rec->timing_count : 0;
}

/* All stages and all memory writes before -> libenn's compute and transfer commands. */
static void external_barrier_in(VkCommandBuffer cmd)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0,
                         NULL);
}

/* The slot of the next external recording: 0 with push descriptors (nothing of a
 * recording lives in the pool) or without events; else the first, from ext_next on,
 * whose last recording has run (its event set) or that has none. */
static enn_status external_slot(enn_recorder *rec, const char *what, uint32_t *slot)
{
    enn_context *ctx = rec->ctx;
    *slot = 0;
    if (ctx->enabled.push_descriptors || !ctx->enabled.events) return ENN_OK;
    for (uint32_t k = 0; k < ENN_EXTERNAL_SLOTS; k++) {
        uint32_t i = (rec->ext_next + k) % ENN_EXTERNAL_SLOTS;
        if (rec->ext_waiting[i]) {
            VkResult r = vkGetEventStatus(ctx->device, rec->ext_events[i]);
            if (r == VK_EVENT_RESET) continue;
            if (r != VK_EVENT_SET) return enn_context_vk_error(ctx, r, "vkGetEventStatus (an earlier recording)");
            rec->ext_waiting[i] = 0;
        }
        if (!rec->ext_events[i]) {
            VkEventCreateInfo ei = {.sType = VK_STRUCTURE_TYPE_EVENT_CREATE_INFO};
            ENN_VK_TRY(vkCreateEvent(ctx->device, &ei, ctx->vk_callbacks, &rec->ext_events[i]));
        }
        ENN_VK_TRY(vkResetEvent(ctx->device, rec->ext_events[i]));
        *slot = i;
        return ENN_OK;
    }
    return enn_error(ENN_ERROR_INVALID_ARGUMENT,
                     "%s: the last %d recordings have not run yet, and without push descriptors each holds its "
                     "descriptor sets until it has: wait for the oldest to finish before recording another (a "
                     "recording that will never be submitted: reset the stream)",
                     what, ENN_EXTERNAL_SLOTS);
}

enn_status enn_recorder_begin_external(enn_recorder *rec, VkCommandBuffer cmd, const char *what)
{
    if (!rec || cmd == VK_NULL_HANDLE)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_begin_external: NULL argument");
    if (rec->recording) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_begin_external: already recording");
    ENN_TRY(enn_context_usable(rec->ctx));
    ENN_TRY(wait_segments(rec));
    uint32_t slot;
    ENN_TRY(external_slot(rec, what, &slot));
    if (slot >= rec->seg_capacity) {
        segment *segs = realloc(rec->segs, ENN_EXTERNAL_SLOTS * sizeof *segs);
        if (!segs) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "recorder segments");
        memset(segs + rec->seg_capacity, 0, (ENN_EXTERNAL_SLOTS - rec->seg_capacity) * sizeof *segs);
        rec->segs = segs;
        rec->seg_capacity = ENN_EXTERNAL_SLOTS;
    }
    while (rec->seg_count <= slot) {
        ENN_TRY(segment_init(rec, &rec->segs[rec->seg_count]));
        rec->seg_count++;
    }
    segment *s = &rec->segs[slot];
    /* The slot's previous recording has run: its sets and views can go. Views bound by
     * push descriptors are kept instead (rec->kept): a recording may be submitted again. */
    if (s->descriptors) ENN_VK_TRY(vkResetDescriptorPool(rec->ctx->device, s->descriptors, 0));
    drop_views(rec->ctx, s);
    rec->own_cmd = s->cmd;
    s->cmd = cmd;
    s->dispatches = 0;
    s->timed_count = 0;
    rec->stats = (enn_recorder_stats){0};
    rec->timed_count = rec->timing_count = 0;
    rec->timestamps = 0;
    rec->current = slot;
    rec->recording = rec->external = 1;
    rec->reads.count = rec->writes.count = 0;
    external_barrier_in(cmd);
    rec->stats.barriers++;
    return ENN_OK;
}

enn_status enn_recorder_end_external(enn_recorder *rec, int keep)
{
    if (!rec || !rec->external)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_recorder_end_external: no external recording is open");
    segment *s = &rec->segs[rec->current];
    /* Same closing barrier as an own submission: writes visible to everything after. */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT | VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    rec->stats.barriers++;
    /* When it has run, the slot is free again. */
    VkEvent done = rec->ext_events[rec->current];
    if (keep && done != VK_NULL_HANDLE) {
        vkCmdSetEvent(s->cmd, done, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT);
        rec->ext_waiting[rec->current] = 1;
        rec->ext_next = (rec->current + 1) % ENN_EXTERNAL_SLOTS;
    }
    s->cmd = rec->own_cmd;
    rec->recording = rec->external = 0;
    return ENN_OK;
}

void enn_recorder_forget_external(enn_recorder *rec)
{
    if (rec)
        for (uint32_t k = 0; k < ENN_EXTERNAL_SLOTS; k++) rec->ext_waiting[k] = 0;
}

enn_context *enn_recorder_context(const enn_recorder *rec) { return rec ? rec->ctx : NULL; }
