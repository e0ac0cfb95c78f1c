/* What a physical device can do, read once, and the switches that turn features off. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "core/context.h"
#include "core/error.h"
#include "core/vk_compat.h"

int enn_env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

enn_status enn_device_has_extension(VkPhysicalDevice pd, const char *name, int *has)
{
    *has = 0;
    uint32_t n = 0;
    VkExtensionProperties *props = NULL;
    VkResult r;
    do { /* VK_INCOMPLETE: the list grew between the two calls (a layer was loaded) */
        free(props);
        props = NULL;
        r = vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
        if (r != VK_SUCCESS || n == 0) break;
        if (!(props = calloc(n, sizeof *props)))
            return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "listing the device's extensions (%u)", n);
        r = vkEnumerateDeviceExtensionProperties(pd, NULL, &n, props);
    } while (r == VK_INCOMPLETE);
    if (r != VK_SUCCESS) {
        free(props);
        return enn_vk_error(r, "vkEnumerateDeviceExtensionProperties");
    }
    for (uint32_t i = 0; i < n && !*has; i++) *has = strcmp(props[i].extensionName, name) == 0;
    free(props);
    return ENN_OK;
}

static enn_device_type map_type(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return ENN_DEVICE_INTEGRATED_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return ENN_DEVICE_DISCRETE_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return ENN_DEVICE_VIRTUAL_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return ENN_DEVICE_CPU;
    default: return ENN_DEVICE_OTHER;
    }
}

static enn_scalar_type map_component(int t)
{
    /* VK_COMPONENT_TYPE_FLOAT16 = 0, FLOAT32 = 1 in both the NV and KHR enums. */
    return t == 0 ? ENN_F16 : t == 1 ? ENN_F32 : ENN_OTHER_TYPE;
}

static enn_status query_coopmat(VkInstance instance, VkPhysicalDevice pd, enn_capabilities *caps)
{
    int nv;
    ENN_TRY(enn_device_has_extension(pd, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME, &caps->cooperative_matrix_khr));
    ENN_TRY(enn_device_has_extension(pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME, &nv));
    if (!nv) return ENN_OK;
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
            instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!get) return ENN_OK;   /* the loader does not know the entry point: no shapes */
    ENN_VK_TRY(get(pd, &n, NULL));
    if (n == 0) return ENN_OK;
    VkCooperativeMatrixPropertiesNV *props = calloc(n, sizeof *props);
    if (!props) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "listing cooperative matrix shapes (%u)", n);
    for (uint32_t i = 0; i < n; i++) props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    VkResult r = get(pd, &n, props);
    if (r == VK_SUCCESS || r == VK_INCOMPLETE) {   /* (INCOMPLETE: the first n are filled) */
        for (uint32_t i = 0; i < n && caps->coopmat_shape_count < ENN_MAX_COOPMAT_SHAPES; i++) {
            if (props[i].scope != VK_SCOPE_SUBGROUP_NV) continue;
            enn_coopmat_shape *s = &caps->coopmat_shapes[caps->coopmat_shape_count++];
            s->m = props[i].MSize; s->n = props[i].NSize; s->k = props[i].KSize;
            s->a_type = map_component(props[i].AType);
            s->b_type = map_component(props[i].BType);
            s->c_type = map_component(props[i].CType);
            s->result_type = map_component(props[i].DType);
            if (s->a_type == ENN_F16 && s->b_type == ENN_F16 && s->c_type == ENN_F32)
                caps->cooperative_matrix = 1;
        }
    }
    free(props);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return enn_vk_error(r, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    return ENN_OK;
}

enn_status enn_query_capabilities(VkInstance instance, VkPhysicalDevice pd, enn_capabilities *caps)
{
    memset(caps, 0, sizeof *caps);
    VkPhysicalDeviceSubgroupProperties subgroup = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT sizectl = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
    VkPhysicalDeviceDriverProperties driver = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &subgroup};
    VkPhysicalDeviceProperties basic;
    vkGetPhysicalDeviceProperties(pd, &basic);
    int has_sizectl = basic.apiVersion >= VK_API_VERSION_1_3, has_driver = basic.apiVersion >= VK_API_VERSION_1_2;
    if (!has_sizectl) ENN_TRY(enn_device_has_extension(pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME, &has_sizectl));
    if (!has_driver) ENN_TRY(enn_device_has_extension(pd, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME, &has_driver));
    void **tail = &subgroup.pNext;
    if (has_sizectl) { *tail = &sizectl; tail = &sizectl.pNext; }
    if (has_driver) { *tail = &driver; tail = &driver.pNext; }
    vkGetPhysicalDeviceProperties2(pd, &props);
    const VkPhysicalDeviceLimits *lim = &props.properties.limits;

    snprintf(caps->device_name, sizeof caps->device_name, "%s", props.properties.deviceName);
    if (has_driver) {
        snprintf(caps->driver_name, sizeof caps->driver_name, "%s", driver.driverName);
        snprintf(caps->driver_info, sizeof caps->driver_info, "%s", driver.driverInfo);
    }
    caps->vendor_id = props.properties.vendorID;
    caps->device_id = props.properties.deviceID;
    caps->driver_version = props.properties.driverVersion;
    caps->api_version = props.properties.apiVersion;
    caps->device_type = map_type(props.properties.deviceType);
    memcpy(caps->pipeline_cache_uuid, props.properties.pipelineCacheUUID, 16);

    caps->subgroup_size = subgroup.subgroupSize;
    caps->min_subgroup_size = caps->max_subgroup_size = subgroup.subgroupSize;
    caps->subgroup_arithmetic =
        (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
        (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);

    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT sizectl_f = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                       .pNext = &s16};
    tail = &s16.pNext;
    int has_f16 = basic.apiVersion >= VK_API_VERSION_1_2;
    if (!has_f16) ENN_TRY(enn_device_has_extension(pd, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME, &has_f16));
    if (has_f16) { *tail = &f16; tail = &f16.pNext; }
    if (has_sizectl) { *tail = &sizectl_f; tail = &sizectl_f.pNext; }
    vkGetPhysicalDeviceFeatures2(pd, &feats);

    if (has_sizectl && sizectl_f.subgroupSizeControl &&
        (sizectl.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
        caps->subgroup_size_control = 1;
        caps->min_subgroup_size = sizectl.minSubgroupSize;
        caps->max_subgroup_size = sizectl.maxSubgroupSize;
    }
    caps->max_shared_memory = lim->maxComputeSharedMemorySize;
    for (int i = 0; i < 3; i++) {
        caps->max_workgroup_size[i] = lim->maxComputeWorkGroupSize[i];
        caps->max_workgroup_count[i] = lim->maxComputeWorkGroupCount[i];
    }
    caps->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
    caps->max_storage_buffer_range = lim->maxStorageBufferRange;
    caps->min_storage_buffer_offset_alignment = (uint32_t)lim->minStorageBufferOffsetAlignment;
    caps->max_push_constants_size = lim->maxPushConstantsSize;
    caps->max_texel_buffer_elements = lim->maxTexelBufferElements;
    caps->min_texel_buffer_offset_alignment = (uint32_t)lim->minTexelBufferOffsetAlignment;
    VkFormatProperties r32, rgba32;
    vkGetPhysicalDeviceFormatProperties(pd, VK_FORMAT_R32_SFLOAT, &r32);
    vkGetPhysicalDeviceFormatProperties(pd, VK_FORMAT_R32G32B32A32_SFLOAT, &rgba32);
    caps->texel_buffer_f32 = (r32.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) &&
                             (rgba32.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT);
    caps->storage_texel_buffer_f32 = (rgba32.bufferFeatures & VK_FORMAT_FEATURE_STORAGE_TEXEL_BUFFER_BIT) != 0;

    caps->storage_16bit = s16.storageBuffer16BitAccess != 0;
    caps->fp16_arithmetic = has_f16 && f16.shaderFloat16;
    ENN_TRY(query_coopmat(instance, pd, caps));
    /* Cooperative matrices read fp16 from storage buffers. */
    if (!caps->storage_16bit) caps->cooperative_matrix = 0;

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof *q);
    if (!q) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "listing queue families (%u)", nq);
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, q);
    for (uint32_t i = 0; i < nq; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            caps->timestamps = q[i].timestampValidBits > 0 && lim->timestampPeriod > 0;
            break;
        }
    free(q);
    caps->timestamp_period_ns = lim->timestampPeriod;
    ENN_TRY(enn_device_has_extension(pd, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME, &caps->push_descriptors));

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    uint32_t best_heap = UINT32_MAX;
    for (uint32_t h = 0; h < mem.memoryHeapCount; h++)
        if ((mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mem.memoryHeaps[h].size > caps->device_local_bytes) {
            caps->device_local_bytes = mem.memoryHeaps[h].size;
            best_heap = h;
        }
    /* Unified: an integrated or CPU device whose main device-local heap is mappable. */
    if (caps->device_type == ENN_DEVICE_INTEGRATED_GPU || caps->device_type == ENN_DEVICE_CPU) {
        VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                     VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        for (uint32_t t = 0; t < mem.memoryTypeCount; t++)
            if ((mem.memoryTypes[t].propertyFlags & want) == want &&
                mem.memoryTypes[t].heapIndex == best_heap)
                caps->unified_memory = 1;
    }
    return ENN_OK;
}

void enn_apply_disable_switches(enn_capabilities *caps)
{
    if (enn_env_flag("ENN_DISABLE_FP16")) {
        caps->fp16_arithmetic = 0;
        caps->storage_16bit = 0;
        caps->cooperative_matrix = 0;
    }
    if (enn_env_flag("ENN_DISABLE_COOPMAT")) caps->cooperative_matrix = 0;
    if (enn_env_flag("ENN_DISABLE_TEXEL_BUFFERS")) caps->texel_buffer_f32 = caps->storage_texel_buffer_f32 = 0;
    /* Test hook: choose every kernel variant and launch shape as for a discrete GPU, so
     * that the GPU paths also run (slowly) on lavapipe in CI. */
    if (enn_env_flag("ENN_PLAN_AS_GPU")) caps->device_type = ENN_DEVICE_DISCRETE_GPU;
    /* ENN_EXACT_BINDINGS binds aliases that live as long as their descriptor sets. */
    if (enn_env_flag("ENN_DISABLE_PUSH_DESCRIPTORS") || enn_env_flag("ENN_EXACT_BINDINGS")) caps->push_descriptors = 0;
    if (enn_env_flag("ENN_DISABLE_SUBGROUP_SIZE_CONTROL")) {
        caps->subgroup_size_control = 0;
        caps->min_subgroup_size = caps->max_subgroup_size = caps->subgroup_size;
    }
    if (enn_env_flag("ENN_DISABLE_TIMESTAMPS")) caps->timestamps = 0;
    if (enn_env_flag("ENN_FORCE_STAGING")) caps->unified_memory = 0;
    /* ENN_MAX_BINDING_BYTES=n: act as if one storage binding covered at most n bytes
     * (rounded down to 256, at least 64 KiB), so the paths that split large buffers
     * into windows run on small test shapes. Only ever lowers the device's limit;
     * a value that is not a whole number (a sign included) is ignored. */
    const char *range = getenv("ENN_MAX_BINDING_BYTES");
    if (range && range[0] >= '0' && range[0] <= '9') {
        char *end = NULL;
        unsigned long long v = strtoull(range, &end, 10);
        if (end && !*end) {
            v = v / 256 * 256;
            if (v < 65536) v = 65536;
            if (v < caps->max_storage_buffer_range) caps->max_storage_buffer_range = v;
        }
    }
}
