/* Pipeline creation, the per-context registry, and the on-disk VkPipelineCache.
 *
 * The cache file starts with a header naming the device it was made on; a file from
 * another device or driver, a truncated file or one whose checksum fails is ignored and
 * replaced at the next save. Saving merges in what the file holds by then (another
 * process on the device may have saved since this context started), writes a temporary
 * file and renames it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/atomic_file.h"
#include "core/context.h"
#include "core/error.h"
#include "core/pipelines.h"
#include "core/shader_table.h"

#define CACHE_MAGIC "ENNPCACH"
#define CACHE_FORMAT 1

typedef struct cache_header {
    char magic[8];
    uint32_t format;
    uint32_t vendor_id, device_id, driver_version;
    uint8_t uuid[16];
    uint64_t data_size;
    uint32_t crc32;
    uint32_t reserved;
} cache_header;

struct enn_pipeline_registry {
    enn_pipeline **items;
    uint32_t count, capacity;
    VkPipelineCache cache;
    char path[512];
    enn_pipeline_stats stats;
};

const enn_shader_module *enn_shader_find(const char *name)
{
    for (size_t i = 0; i < enn_shader_module_count; i++)
        if (!strcmp(enn_shader_modules[i].name, name)) return &enn_shader_modules[i];
    return NULL;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void cache_path(const char *dir_opt, const enn_capabilities *caps, char *out, size_t n)
{
    out[0] = '\0';
    char dir[400];
    int len;
    const char *env_dir = getenv("ENN_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (dir_opt) {
        if (!dir_opt[0]) return; /* "" turns the disk cache off */
        len = snprintf(dir, sizeof dir, "%s", dir_opt);
    } else if (env_dir && env_dir[0]) len = snprintf(dir, sizeof dir, "%s", env_dir);
    else if (xdg && xdg[0]) len = snprintf(dir, sizeof dir, "%s/enn", xdg);
    else if (home && home[0]) len = snprintf(dir, sizeof dir, "%s/.cache/enn", home);
    else return;
    /* A shortened path would name some other directory: no disk cache rather than that. */
    if (len < 0 || (size_t)len >= sizeof dir) return;
    len = snprintf(out, n, "%s/pipelines-%08x-%08x.bin", dir, caps->vendor_id, caps->device_id);
    if (len < 0 || (size_t)len >= n) out[0] = '\0';
}

/* Reads a cache file; returns malloc'd data only when the header matches this device. */
static void *read_cache(const char *path, const enn_capabilities *caps, size_t *size)
{
    /* Only a regular file: opening a FIFO left at that name would block forever. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return NULL;
    struct stat st;
    FILE *f = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "rb") : NULL;
    if (!f) {
        close(fd);
        return NULL;
    }
    cache_header h;
    void *data = NULL;
    if (fread(&h, sizeof h, 1, f) == 1 && !memcmp(h.magic, CACHE_MAGIC, 8) && h.format == CACHE_FORMAT &&
        h.vendor_id == caps->vendor_id && h.device_id == caps->device_id &&
        h.driver_version == caps->driver_version && !memcmp(h.uuid, caps->pipeline_cache_uuid, 16) &&
        h.data_size > 0 && h.data_size < ((uint64_t)1 << 30)) {
        data = malloc(h.data_size);
        if (data && (fread(data, 1, h.data_size, f) != h.data_size ||
                     crc32(0L, data, (uInt)h.data_size) != h.crc32 || fgetc(f) != EOF)) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    if (data) *size = h.data_size;
    return data;
}

static int make_dirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash) return 0;
    *slash = '\0';
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Adds what the cache file holds now to this context's cache: another process (or
 * context) on this device may have saved pipelines since this one started, and a plain
 * rewrite would drop them. A file that cannot be read or merged is passed over. */
static void merge_saved(enn_context *ctx, enn_pipeline_registry *reg)
{
    size_t size = 0;
    void *data = read_cache(reg->path, &ctx->caps, &size);
    if (!data) return;
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, .initialDataSize = size,
                                    .pInitialData = data};
    VkPipelineCache saved;
    if (vkCreatePipelineCache(ctx->device, &ci, ctx->vk_callbacks, &saved) == VK_SUCCESS) {
        if (vkMergePipelineCaches(ctx->device, reg->cache, 1, &saved) != VK_SUCCESS) { /* keep our own entries */ }
        vkDestroyPipelineCache(ctx->device, saved, ctx->vk_callbacks);
    }
    free(data);
}

enn_status enn_pipeline_cache_save(enn_context *ctx)
{
    enn_pipeline_registry *reg = ctx->pipelines;
    if (!reg || !reg->path[0] || !reg->cache) return ENN_OK;
    merge_saved(ctx, reg);
    size_t size = 0;
    ENN_VK_TRY(vkGetPipelineCacheData(ctx->device, reg->cache, &size, NULL));
    if (size == 0) return ENN_OK;
    void *data = malloc(size);
    if (!data) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "pipeline cache data");
    VkResult r = vkGetPipelineCacheData(ctx->device, reg->cache, &size, data);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) { free(data); return enn_vk_error(r, "vkGetPipelineCacheData"); }
    cache_header h = {.format = CACHE_FORMAT, .vendor_id = ctx->caps.vendor_id, .device_id = ctx->caps.device_id,
                      .driver_version = ctx->caps.driver_version, .data_size = size,
                      .crc32 = (uint32_t)crc32(0L, data, (uInt)size)};
    memcpy(h.magic, CACHE_MAGIC, 8);
    memcpy(h.uuid, ctx->caps.pipeline_cache_uuid, 16);
    enn_status s = ENN_OK;
    enn_atomic_file af;
    if (make_dirs(reg->path) != 0)
        s = enn_error(ENN_ERROR_IO, "cannot create the directory of %s: %s", reg->path, strerror(errno));
    else if ((s = enn_atomic_open(&af, reg->path)) == ENN_OK) {
        s = enn_atomic_write(&af, &h, sizeof h);
        if (s == ENN_OK) s = enn_atomic_write(&af, data, size);
        if (s == ENN_OK) s = enn_atomic_commit(&af);
        else enn_atomic_abort(&af);
    }
    free(data);
    return s;
}

enn_status enn_pipelines_create(enn_context *ctx, const char *cache_dir)
{
    enn_pipeline_registry *reg = calloc(1, sizeof *reg);
    if (!reg) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "pipeline registry");
    ctx->pipelines = reg;
    cache_path(cache_dir, &ctx->caps, reg->path, sizeof reg->path);
    snprintf(reg->stats.cache_path, sizeof reg->stats.cache_path, "%s", reg->path);
    size_t size = 0;
    void *data = reg->path[0] ? read_cache(reg->path, &ctx->caps, &size) : NULL;
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = data ? size : 0, .pInitialData = data};
    VkResult r = vkCreatePipelineCache(ctx->device, &ci, ctx->vk_callbacks, &reg->cache);
    if (r != VK_SUCCESS && data) {
        /* The driver refused the data: start empty rather than fail. */
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = vkCreatePipelineCache(ctx->device, &ci, ctx->vk_callbacks, &reg->cache);
        free(data);
        data = NULL;
    }
    reg->stats.cache_loaded = data != NULL;
    free(data);
    if (r != VK_SUCCESS) return enn_vk_error(r, "vkCreatePipelineCache");
    return ENN_OK;
}

static void pipeline_free(enn_context *ctx, enn_pipeline *p)
{
    if (p->pipeline) vkDestroyPipeline(ctx->device, p->pipeline, ctx->vk_callbacks);
    if (p->layout) vkDestroyPipelineLayout(ctx->device, p->layout, ctx->vk_callbacks);
    if (p->set_layout) vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, ctx->vk_callbacks);
    free(p);
}

void enn_pipelines_destroy(enn_context *ctx)
{
    enn_pipeline_registry *reg = ctx->pipelines;
    if (!reg) return;
    if (enn_pipeline_cache_save(ctx) != ENN_OK) { /* a cache that cannot be saved is not an error */ }
    for (uint32_t i = 0; i < reg->count; i++) pipeline_free(ctx, reg->items[i]);
    free(reg->items);
    if (reg->cache) vkDestroyPipelineCache(ctx->device, reg->cache, ctx->vk_callbacks);
    free(reg);
    ctx->pipelines = NULL;
}

void enn_pipeline_get_stats(const enn_context *ctx, enn_pipeline_stats *out)
{
    *out = ctx->pipelines->stats;
}

VkDescriptorType enn_pipeline_descriptor_type(const enn_pipeline *p, uint32_t i)
{
    if (p->texel_formats[i] == VK_FORMAT_UNDEFINED) return VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    return p->storage_texel_mask >> i & 1u ? VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER
                                          : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
}

static int same_formats(const enn_pipeline *p, const enn_pipeline_desc *d)
{
    for (uint32_t i = 0; i < d->num_buffers && i < ENN_MAX_BINDINGS; i++)
        if (p->texel_formats[i] != (d->texel_formats ? d->texel_formats[i] : VK_FORMAT_UNDEFINED)) return 0;
    return p->storage_texel_mask == d->storage_texel_mask;
}

static int same_desc(const enn_pipeline *p, const enn_pipeline_desc *d)
{
    return same_formats(p, d) && !strcmp(p->shader, d->shader) && p->spec_count == d->spec_count && p->num_buffers == d->num_buffers &&
           p->push_size == d->push_size && p->required_subgroup_size == d->required_subgroup_size &&
           (d->spec_count == 0 || !memcmp(p->spec, d->spec, d->spec_count * sizeof(uint32_t)));
}


static enn_status build(enn_context *ctx, const enn_shader_module *mod, enn_pipeline *p)
{
    VkDescriptorSetLayoutBinding b[ENN_MAX_BINDINGS];
    for (uint32_t i = 0; i < p->num_buffers; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = enn_pipeline_descriptor_type(p, i),
                                              .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    p->push_descriptors = ctx->enabled.push_descriptors;
    VkDescriptorSetLayoutCreateInfo dl = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .flags = p->push_descriptors ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
        .bindingCount = p->num_buffers, .pBindings = b};
    ENN_VK_TRY(vkCreateDescriptorSetLayout(ctx->device, &dl, ctx->vk_callbacks, &p->set_layout));
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = p->push_size};
    VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1, .pSetLayouts = &p->set_layout,
                                     .pushConstantRangeCount = p->push_size ? 1 : 0, .pPushConstantRanges = &pr};
    ENN_VK_TRY(vkCreatePipelineLayout(ctx->device, &pl, ctx->vk_callbacks, &p->layout));

    VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                    .codeSize = *mod->word_count * 4, .pCode = mod->words};
    VkShaderModule sm;
    ENN_VK_TRY(vkCreateShaderModule(ctx->device, &smi, ctx->vk_callbacks, &sm));
    VkSpecializationMapEntry entries[ENN_MAX_SPEC];
    for (uint32_t i = 0; i < p->spec_count; i++)
        entries[i] = (VkSpecializationMapEntry){.constantID = i, .offset = i * 4, .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = p->spec_count, .pMapEntries = entries,
                               .dataSize = p->spec_count * 4, .pData = p->spec};
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT rss = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
        .requiredSubgroupSize = p->required_subgroup_size};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .pNext = p->required_subgroup_size ? &rss : NULL,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT, .module = sm, .pName = "main",
                  .pSpecializationInfo = p->spec_count ? &si : NULL},
        .layout = p->layout};
    double t0 = now_ms();
    VkResult r = vkCreateComputePipelines(ctx->device, ctx->pipelines->cache, 1, &ci, ctx->vk_callbacks, &p->pipeline);
    ctx->pipelines->stats.create_ms += now_ms() - t0;
    vkDestroyShaderModule(ctx->device, sm, ctx->vk_callbacks);
    if (r != VK_SUCCESS) {
        p->pipeline = VK_NULL_HANDLE;
        return enn_vk_error(r, "vkCreateComputePipelines");
    }
    ctx->pipelines->stats.created++;
    return ENN_OK;
}

enn_status enn_pipeline_get(enn_context *ctx, const enn_pipeline_desc *d, const enn_pipeline **out)
{
    if (!ctx || !d || !d->shader || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_pipeline_get: NULL argument");
    enn_pipeline_registry *reg = ctx->pipelines;
    for (uint32_t i = 0; i < reg->count; i++)
        if (same_desc(reg->items[i], d)) {
            *out = reg->items[i];
            return ENN_OK;
        }
    if (d->num_buffers > ENN_MAX_BINDINGS || d->spec_count > ENN_MAX_SPEC || d->push_size > ENN_MAX_PUSH ||
        strlen(d->shader) >= sizeof((enn_pipeline *)0)->shader)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "pipeline %s: too many buffers, constants or push bytes", d->shader);
    if (d->required_subgroup_size && !ctx->enabled.subgroup_size_control)
        return enn_error(ENN_ERROR_UNSUPPORTED, "pipeline %s needs subgroup size control", d->shader);
    for (uint32_t i = 0; i < d->num_buffers; i++)
        if ((d->storage_texel_mask >> i & 1u) && (!d->texel_formats || d->texel_formats[i] == VK_FORMAT_UNDEFINED))
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "pipeline %s: storage texel binding %u has no format", d->shader,
                             i);
    const enn_shader_module *mod = enn_shader_find(d->shader);
    if (!mod) return enn_error(ENN_ERROR_INTERNAL, "no embedded shader is named \"%s\"", d->shader);
    enn_pipeline *p = calloc(1, sizeof *p);
    if (!p) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "pipeline record");
    snprintf(p->shader, sizeof p->shader, "%s", d->shader);
    p->spec_count = d->spec_count;
    if (d->spec_count) memcpy(p->spec, d->spec, d->spec_count * 4);
    p->num_buffers = d->num_buffers;
    p->push_size = d->push_size;
    p->required_subgroup_size = d->required_subgroup_size;
    if (d->texel_formats) memcpy(p->texel_formats, d->texel_formats, d->num_buffers * sizeof(VkFormat));
    p->storage_texel_mask = d->storage_texel_mask;
    enn_status s = build(ctx, mod, p);
    if (s == ENN_OK && reg->count == reg->capacity) {
        uint32_t cap = reg->capacity ? reg->capacity * 2 : 32;
        enn_pipeline **items = realloc(reg->items, cap * sizeof *items);
        if (!items) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "pipeline registry");
        else { reg->items = items; reg->capacity = cap; }
    }
    if (s != ENN_OK) { pipeline_free(ctx, p); return s; }
    reg->items[reg->count++] = p;
    *out = p;
    return ENN_OK;
}
