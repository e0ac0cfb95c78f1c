/* Context creation: instance, device choice, device with the features libenn uses, or
 * adoption of a caller's device; and the services every context has. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/error.h"
#include "core/recorder.h"
#include "core/struct_size.h"
#include "core/vk_compat.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"
#define DEFAULT_DISPATCHES_PER_SUBMIT 256
#define MAX_DISPATCHES_PER_SUBMIT 65536

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    enn_context *ctx = user;
    if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    /* The loader's own warnings (VK_INSTANCE_LAYERS "adding layers", a manifest it skips)
     * say nothing of libenn's use of Vulkan: not counted. Its errors are. */
    if (types == VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT && severity == VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT &&
        data && data->pMessageIdName && !strcmp(data->pMessageIdName, "Loader Message"))
        return VK_FALSE;
    const char *msg = data && data->pMessage ? data->pMessage : "(no text)";
    /* The driver may report from any thread: the first message is published only once
     * written, so a reader on another thread never sees half of it. */
    if (atomic_fetch_add(&ctx->validation_count, 1) == 0) {
        snprintf(ctx->validation_first, sizeof ctx->validation_first, "%s", msg);
        atomic_store_explicit(&ctx->validation_first_ready, 1, memory_order_release);
    }
    /* The library prints nothing; the caller's callback decides what to show. */
    if (ctx->validation_callback) ctx->validation_callback(ctx->validation_user, msg);
    return VK_FALSE;
}

/* *has = 1 when the loader offers the instance extension. Running out of memory while
 * asking is an error, not a "no": a missing extension or layer changes what is asked for. */
static enn_status has_instance_extension(const char *name, int *has)
{
    *has = 0;
    uint32_t n = 0;
    ENN_VK_TRY(vkEnumerateInstanceExtensionProperties(NULL, &n, NULL));
    if (!n) return ENN_OK;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    if (!p) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "listing instance extensions");
    VkResult r = vkEnumerateInstanceExtensionProperties(NULL, &n, p);
    for (uint32_t i = 0; (r == VK_SUCCESS || r == VK_INCOMPLETE) && i < n && !*has; i++)
        *has = !strcmp(p[i].extensionName, name);
    free(p);
    return r == VK_SUCCESS || r == VK_INCOMPLETE ? ENN_OK : enn_vk_error(r, "vkEnumerateInstanceExtensionProperties");
}

static enn_status has_layer(const char *name, int *has)
{
    *has = 0;
    uint32_t n = 0;
    ENN_VK_TRY(vkEnumerateInstanceLayerProperties(&n, NULL));
    if (!n) return ENN_OK;
    VkLayerProperties *p = calloc(n, sizeof *p);
    if (!p) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "listing instance layers");
    VkResult r = vkEnumerateInstanceLayerProperties(&n, p);
    for (uint32_t i = 0; (r == VK_SUCCESS || r == VK_INCOMPLETE) && i < n && !*has; i++)
        *has = !strcmp(p[i].layerName, name);
    free(p);
    return r == VK_SUCCESS || r == VK_INCOMPLETE ? ENN_OK : enn_vk_error(r, "vkEnumerateInstanceLayerProperties");
}

static VkDebugUtilsMessengerCreateInfoEXT messenger_info(enn_context *ctx)
{
    return (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation_message,
        .pUserData = ctx,
    };
}

/* Creates a VkInstance (ctx may be NULL: no messenger, used to list devices) with the
 * host allocator `callbacks` (NULL: the driver's). */
static enn_status create_instance(enn_context *ctx, int validation, const VkAllocationCallbacks *callbacks,
                                  VkInstance *out)
{
    uint32_t loader_version = VK_API_VERSION_1_1;
    if (vkEnumerateInstanceVersion(&loader_version) != VK_SUCCESS) loader_version = VK_API_VERSION_1_1;
    if (loader_version < VK_API_VERSION_1_1)
        return enn_error(ENN_ERROR_UNSUPPORTED, "the Vulkan loader supports only %u.%u; libenn needs 1.1",
                         VK_API_VERSION_MAJOR(loader_version), VK_API_VERSION_MINOR(loader_version));
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "libenn",
        .pEngineName = "libenn",
        .engineVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
        .apiVersion = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : loader_version,
    };
    if (ctx) ctx->instance_api_version = app.apiVersion;
    const char *exts[4];
    uint32_t next = 0;
    VkInstanceCreateFlags flags = 0;
    /* MoltenVK and other portability drivers are listed only when asked for. */
    int portability, has_validation = 0, has_debug_utils = 0;
    ENN_TRY(has_instance_extension(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME, &portability));
    if (validation) {
        ENN_TRY(has_layer(VALIDATION_LAYER, &has_validation));
        ENN_TRY(has_instance_extension(VK_EXT_DEBUG_UTILS_EXTENSION_NAME, &has_debug_utils));
    }
    if (portability) {
        exts[next++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    const char *layers[1] = {VALIDATION_LAYER};
    VkDebugUtilsMessengerCreateInfoEXT dbg;
    if (validation) {
        if (!has_validation)
            return enn_error(ENN_ERROR_UNSUPPORTED,
                             "validation was requested but %s is not installed "
                             "(Debian: vulkan-validationlayers)", VALIDATION_LAYER);
        if (!has_debug_utils)
            return enn_error(ENN_ERROR_UNSUPPORTED, "validation needs %s", VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        exts[next++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        dbg = messenger_info(ctx);
    }
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validation ? &dbg : NULL,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = next,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateInstance(&ci, callbacks, out);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER) {
        /* The loader's own variables can hide every installed driver. */
        const char *icd = getenv("VK_DRIVER_FILES") ? "VK_DRIVER_FILES" : getenv("VK_ICD_FILENAMES") ? "VK_ICD_FILENAMES"
                                                                                                     : NULL;
        return enn_error(ENN_ERROR_NO_DEVICE, "no Vulkan driver found (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER)%s%s%s",
                         icd ? "; the loader looked only where " : "; on Debian install mesa-vulkan-drivers",
                         icd ? icd : "", icd ? " points" : "");
    }
    if (r != VK_SUCCESS) return enn_vk_error(r, "vkCreateInstance");
    return ENN_OK;
}

static enn_status enumerate_devices(VkInstance inst, VkPhysicalDevice **devs, uint32_t *count)
{
    *devs = NULL;
    *count = 0;
    ENN_VK_TRY(vkEnumeratePhysicalDevices(inst, count, NULL));
    if (*count == 0)
        return enn_error(ENN_ERROR_NO_DEVICE, "no Vulkan device found; install a driver "
                         "(mesa-vulkan-drivers gives lavapipe, a CPU device)");
    *devs = calloc(*count, sizeof **devs);
    if (!*devs) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "listing devices");
    VkResult r = vkEnumeratePhysicalDevices(inst, count, *devs);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(*devs);
        *devs = NULL;
        return enn_vk_error(r, "vkEnumeratePhysicalDevices");
    }
    return ENN_OK;
}

static int compute_family(VkPhysicalDevice pd, uint32_t *family)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[64];
    if (n > 64) n = 64;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            *family = i;
            return 1;
        }
    return 0;
}

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

enn_status enn_choose_device(VkPhysicalDevice *devices, uint32_t count, const char *request,
                             uint32_t *chosen)
{
    /* Messages say where the request came from: the option, or the environment. */
    const char *from = "the device option";
    if (!request || !request[0]) {
        request = getenv("ENN_DEVICE");
        from = "ENN_DEVICE";
    }
    int usable[256] = {0};
    if (count > 256) count = 256;
    for (uint32_t i = 0; i < count; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(devices[i], &p);
        uint32_t fam;
        usable[i] = p.apiVersion >= VK_API_VERSION_1_1 && compute_family(devices[i], &fam);
    }
    if (request && request[0]) {
        char *end = NULL;
        /* Digits only: "-1" is a name to look for, not index 2^64 - 1. */
        unsigned long idx = request[0] >= '0' && request[0] <= '9' ? strtoul(request, &end, 10) : 0;
        if (end && *end == '\0' && end != request) {
            if (idx >= count)
                return enn_error(ENN_ERROR_NO_DEVICE, "%s=%s: device index %lu requested, but there %s only %u "
                                 "device%s (try `enn devices` for the list)", from, request, idx,
                                 count == 1 ? "is" : "are", count, count == 1 ? "" : "s");
            if (!usable[idx])
                return enn_error(ENN_ERROR_UNSUPPORTED, "%s=%s: device %lu has no compute queue or predates Vulkan 1.1",
                                 from, request, idx);
            *chosen = (uint32_t)idx;
            return ENN_OK;
        }
        for (uint32_t i = 0; i < count; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(devices[i], &p);
            if (usable[i] && contains_nocase(p.deviceName, request)) {
                *chosen = i;
                return ENN_OK;
            }
        }
        return enn_error(ENN_ERROR_NO_DEVICE, "%s=%s: no usable Vulkan device matches \"%s\" "
                         "(try `enn devices` for the list)", from, request, request);
    }
    int best = -1, best_rank = -1;
    for (uint32_t i = 0; i < count; i++) {
        if (!usable[i]) continue;
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(devices[i], &p);
        if (type_rank(p.deviceType) > best_rank) {
            best_rank = type_rank(p.deviceType);
            best = (int)i;
        }
    }
    if (best < 0)
        return enn_error(ENN_ERROR_NO_DEVICE, "no Vulkan device has a compute queue and Vulkan 1.1");
    *chosen = (uint32_t)best;
    return ENN_OK;
}

static enn_status create_device(enn_context *ctx)
{
    VkPhysicalDevice pd = ctx->physical_device;
    enn_capabilities *caps = &ctx->caps;
    if (!compute_family(pd, &ctx->queue_family))
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s has no compute queue", caps->device_name);

    const char *exts[16];
    uint32_t next = 0;
    int portability;
    ENN_TRY(enn_device_has_extension(pd, "VK_KHR_portability_subset", &portability));
    if (portability) exts[next++] = "VK_KHR_portability_subset";
    if (caps->push_descriptors) exts[next++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    if (caps->fp16_arithmetic && caps->api_version < VK_API_VERSION_1_2)
        exts[next++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    if (caps->subgroup_size_control && caps->api_version < VK_API_VERSION_1_3)
        exts[next++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    /* GLSL's NV cooperative matrices compile to SPIR-V with the Vulkan memory model and
     * float16 types, so the tensor-core GEMM needs both features as well. */
    if (caps->cooperative_matrix) {
        VkPhysicalDeviceVulkanMemoryModelFeatures mm = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &mm};
        int has_mm = caps->api_version >= VK_API_VERSION_1_2;
        if (!has_mm) ENN_TRY(enn_device_has_extension(pd, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME, &has_mm));
        if (has_mm) vkGetPhysicalDeviceFeatures2(pd, &f2);
        if (!has_mm || !mm.vulkanMemoryModel || !caps->fp16_arithmetic) caps->cooperative_matrix = 0;
        else if (caps->api_version < VK_API_VERSION_1_2) exts[next++] = VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME;
    }
    if (caps->cooperative_matrix) exts[next++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;

    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = caps->storage_16bit ? VK_TRUE : VK_FALSE};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = VK_TRUE};
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT sizectl = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
        .subgroupSizeControl = VK_TRUE};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE};
    void *chain = NULL;
    if (caps->storage_16bit) { s16.pNext = chain; chain = &s16; }
    if (caps->fp16_arithmetic) { f16.pNext = chain; chain = &f16; }
    if (caps->subgroup_size_control) { sizectl.pNext = chain; chain = &sizectl; }
    VkPhysicalDeviceVulkanMemoryModelFeatures memory_model = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES,
        .vulkanMemoryModel = VK_TRUE};
    if (caps->cooperative_matrix) { coop.pNext = chain; chain = &coop; }
    if (caps->cooperative_matrix) { memory_model.pNext = chain; chain = &memory_model; }

    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = chain,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = next,
        .ppEnabledExtensionNames = exts,
    };
    /* 64-bit integers in shaders on CPU devices, where the per-sample memory-step kernels
     * store vec4s as two 64-bit words (ENN_DISABLE_INT64: not enabled). */
    VkPhysicalDeviceFeatures supported, core = {0};
    vkGetPhysicalDeviceFeatures(pd, &supported);
    core.shaderInt64 =
        caps->device_type == ENN_DEVICE_CPU && supported.shaderInt64 && !ctx->env.disable_int64;
    dci.pEnabledFeatures = &core;
    VkResult r = vkCreateDevice(pd, &dci, ctx->vk_callbacks, &ctx->device);
    if (r != VK_SUCCESS) return enn_vk_error(r, "vkCreateDevice");
    ctx->owns_device = 1;
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
    ctx->enabled = (enn_enabled_features){
        .push_descriptors = caps->push_descriptors,
        .storage_16bit = caps->storage_16bit,
        .fp16_arithmetic = caps->fp16_arithmetic,
        .subgroup_size_control = caps->subgroup_size_control,
        .coopmat_nv = caps->cooperative_matrix,
        .timestamps = caps->timestamps,
        .shader_int64 = core.shaderInt64 == VK_TRUE,
        .events = !portability,
    };
    return ENN_OK;
}

/* Everything after the device exists: options, memory, pipelines, transfers. */
static enn_status finish_context(enn_context *ctx, const enn_context_options *opt)
{
    vkGetPhysicalDeviceMemoryProperties(ctx->physical_device, &ctx->memory_properties);
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(ctx->physical_device, &p);
    ctx->non_coherent_atom_size = p.limits.nonCoherentAtomSize ? p.limits.nonCoherentAtomSize : 1;
    if (ctx->enabled.push_descriptors) {
        ctx->cmd_push_descriptor_set =
            (PFN_vkCmdPushDescriptorSetKHR)vkGetDeviceProcAddr(ctx->device, "vkCmdPushDescriptorSetKHR");
        if (!ctx->cmd_push_descriptor_set) ctx->enabled.push_descriptors = ctx->caps.push_descriptors = 0;
    }
    ctx->max_dispatches_per_submit = DEFAULT_DISPATCHES_PER_SUBMIT;
    const char *env = getenv("ENN_MAX_DISPATCHES_PER_SUBMIT");
    /* Recorders size their descriptor and query pools by the cap (16 descriptors and 2
     * queries a dispatch), so it is bounded well below where those counts overflow. */
    if (opt && opt->max_dispatches_per_submit) {
        if (opt->max_dispatches_per_submit > MAX_DISPATCHES_PER_SUBMIT)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "max_dispatches_per_submit is %u; at most %u is allowed",
                             opt->max_dispatches_per_submit, MAX_DISPATCHES_PER_SUBMIT);
        ctx->max_dispatches_per_submit = opt->max_dispatches_per_submit;
    } else if (env && env[0]) {
        char *end = NULL;
        unsigned long v = strtoul(env, &end, 10);
        if (*end || v > MAX_DISPATCHES_PER_SUBMIT)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "ENN_MAX_DISPATCHES_PER_SUBMIT=\"%s\": want 0 (the default) to %u",
                             env, MAX_DISPATCHES_PER_SUBMIT);
        if (v) ctx->max_dispatches_per_submit = (uint32_t)v;
    }
    ctx->force_staging = !ctx->caps.unified_memory;
    ctx->exact_bindings = enn_env_flag("ENN_EXACT_BINDINGS");
    VkFormatProperties rgba32ui;
    vkGetPhysicalDeviceFormatProperties(ctx->physical_device, VK_FORMAT_R32G32B32A32_UINT, &rgba32ui);
    ctx->texel_buffer_u32 = ctx->caps.texel_buffer_f32 &&
                            (rgba32ui.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) != 0;

    ENN_TRY(enn_allocator_create(ctx));
    ENN_TRY(enn_transfer_create(ctx));
    ENN_TRY(enn_pipelines_create(ctx, opt ? opt->cache_dir : NULL));
    return ENN_OK;
}

/* Both constructors start here, so owned and adopted devices alike take their snapshot
 * of the environment now. */
static enn_context *context_alloc(void)
{
    enn_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) {
        atomic_init(&ctx->validation_count, 0);
        atomic_init(&ctx->validation_first_ready, 0);
        enn_env_settings_read(&ctx->env);
    }
    return ctx;
}

/* The last step of both constructors: finish the context and give it to the caller, or
 * destroy it keeping the first error's message (destroying may overwrite it). */
static enn_status hand_over(enn_context *ctx, enn_status s, const enn_context_options *opt, enn_context **out)
{
    if (s == ENN_OK) s = finish_context(ctx, opt);
    if (s != ENN_OK) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", enn_last_error());
        enn_context_destroy(ctx);
        enn_error(s, "%s", saved);
        return s;
    }
    enn_error_clear();
    *out = ctx;
    return ENN_OK;
}

/* The caller's options read into `local` (structs that grow); *use is then &local, or
 * NULL for no options. */
static enn_status read_options(const enn_context_options *opt, enn_context_options *local,
                               const enn_context_options **use)
{
    *use = NULL;
    if (!opt) return ENN_OK;
    ENN_TRY(ENN_STRUCT_READ("enn_context_options", ENN_CONTEXT_OPTIONS_SIZE_0_2, opt, local));
    *use = local;
    return ENN_OK;
}

void enn_context_options_init(enn_context_options *options)
{
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
}

enn_status enn_context_create(const enn_context_options *caller_opt, enn_context **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create: out is NULL");
    *out = NULL;
    enn_context_options local;
    const enn_context_options *opt;
    ENN_TRY(read_options(caller_opt, &local, &opt));
    enn_context *ctx = context_alloc();
    if (!ctx) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating the context");
    int validation = (opt && opt->validation) || enn_env_flag("ENN_VALIDATION");
    if (opt) {
        ctx->validation_callback = opt->validation_callback;
        ctx->validation_user = opt->validation_user;
        ctx->vk_callbacks = opt->vk_allocation_callbacks;
    }
    enn_status s = create_instance(validation ? ctx : NULL, validation, ctx->vk_callbacks, &ctx->instance);
    if (s != ENN_OK) { free(ctx); return s; }
    ctx->owns_instance = 1;
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(ctx->instance, "vkCreateDebugUtilsMessengerEXT");
        VkDebugUtilsMessengerCreateInfoEXT mi = messenger_info(ctx);
        VkResult r = create_messenger ? create_messenger(ctx->instance, &mi, ctx->vk_callbacks, &ctx->messenger)
                                      : VK_ERROR_EXTENSION_NOT_PRESENT;
        if (r != VK_SUCCESS) {
            s = enn_vk_error(r, "vkCreateDebugUtilsMessengerEXT");
            enn_context_destroy(ctx);
            return s;
        }
    }
    VkPhysicalDevice *devs = NULL;
    uint32_t count = 0, chosen = 0;
    s = enumerate_devices(ctx->instance, &devs, &count);
    if (s == ENN_OK) s = enn_choose_device(devs, count, opt ? opt->device : NULL, &chosen);
    if (s == ENN_OK) {
        ctx->physical_device = devs[chosen];
        s = enn_query_capabilities(ctx->instance, ctx->physical_device, &ctx->caps);
        enn_apply_disable_switches(&ctx->caps);
        if (s == ENN_OK) s = create_device(ctx);
    }
    free(devs);
    return hand_over(ctx, s, opt, out);
}

static int list_has(const char *const *list, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (list[i] && !strcmp(list[i], name)) return 1;
    return 0;
}

enn_status enn_context_create_from_vulkan(const enn_vulkan_handles *caller_h, const enn_context_options *caller_opt,
                                          enn_context **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create_from_vulkan: out is NULL");
    *out = NULL;
    if (!caller_h)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create_from_vulkan: handles is NULL");
    enn_vulkan_handles handles;
    ENN_TRY(ENN_STRUCT_READ("enn_vulkan_handles", ENN_VULKAN_HANDLES_SIZE_0_2, caller_h, &handles));
    const enn_vulkan_handles *h = &handles;
    enn_context_options local;
    const enn_context_options *opt;
    ENN_TRY(read_options(caller_opt, &local, &opt));
    if (!h->instance || !h->physical_device || !h->device || !h->queue)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create_from_vulkan: instance, "
                         "physical_device, device and queue must all be given");
    /* libenn calls Vulkan 1.1 entry points (vkGetPhysicalDeviceProperties2, ...), which an
     * instance created for 1.0 may not use; only the caller knows what it asked for. */
    if (h->api_version < VK_API_VERSION_1_1)
        return enn_error(ENN_ERROR_UNSUPPORTED, "enn_context_create_from_vulkan: api_version %u.%u: the instance must be "
                         "created with VkApplicationInfo.apiVersion 1.1 or later, and api_version say so%s",
                         VK_API_VERSION_MAJOR(h->api_version), VK_API_VERSION_MINOR(h->api_version),
                         h->api_version ? "" : " (it is 0: not given)");
    if (h->enabled_device_extension_count && !h->enabled_device_extensions)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create_from_vulkan: enabled_device_extension_count "
                         "is %u but enabled_device_extensions is NULL", h->enabled_device_extension_count);
    for (uint32_t i = 0; i < h->enabled_device_extension_count; i++)
        if (!h->enabled_device_extensions[i])
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create_from_vulkan: enabled_device_extensions[%u] "
                             "is NULL", i);
    if (!h->queue_lock != !h->queue_unlock)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create_from_vulkan: queue_lock is %s but queue_unlock "
                         "is %s: give both or neither", h->queue_lock ? "set" : "NULL", h->queue_unlock ? "set" : "NULL");
    if (h->enabled_features && h->enabled_features->sType != VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_create_from_vulkan: enabled_features must start "
                         "with a VkPhysicalDeviceFeatures2 (sType %d given)", (int)h->enabled_features->sType);
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(h->physical_device, &nq, NULL);
    VkQueueFamilyProperties q[64];
    if (nq > 64) nq = 64;
    vkGetPhysicalDeviceQueueFamilyProperties(h->physical_device, &nq, q);
    if (h->queue_family >= nq || !(q[h->queue_family].queueFlags & VK_QUEUE_COMPUTE_BIT))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "queue family %u does not exist or has no compute support",
                         h->queue_family);
    enn_context *ctx = context_alloc();
    if (!ctx) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "allocating the context");
    ctx->instance = h->instance;
    ctx->physical_device = h->physical_device;
    ctx->device = h->device;
    ctx->queue = h->queue;
    ctx->queue_family = h->queue_family;
    ctx->instance_api_version = h->api_version;
    ctx->vk_callbacks = h->allocation_callbacks;
    ctx->queue_lock = h->queue_lock;
    ctx->queue_unlock = h->queue_unlock;
    ctx->queue_lock_user = h->queue_lock_user;
    enn_status s = enn_query_capabilities(h->instance, h->physical_device, &ctx->caps);
    if (s != ENN_OK) {
        free(ctx);
        return s;
    }
    /* Timestamps as the adopted queue's family supports them (the query looked at the
     * first compute family). */
    ctx->caps.timestamps = q[h->queue_family].timestampValidBits > 0 && ctx->caps.timestamp_period_ns > 0;
    enn_apply_disable_switches(&ctx->caps);
    if (ctx->caps.api_version < VK_API_VERSION_1_1) {
        free(ctx);
        return enn_error(ENN_ERROR_UNSUPPORTED, "the adopted device predates Vulkan 1.1");
    }
    /* Use only what the caller says it enabled. */
    enn_capabilities *c = &ctx->caps;
    const char *const *ext = h->enabled_device_extensions;
    uint32_t next = h->enabled_device_extension_count;
    c->push_descriptors = c->push_descriptors && list_has(ext, next, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    c->cooperative_matrix = 0;
    int s16 = 0, f16 = 0, sizectl = 0, coop = 0, mm = 0;
    for (const VkBaseInStructure *p = h->enabled_features ? h->enabled_features->pNext : NULL; p; p = p->pNext) {
        switch (p->sType) {
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES:
            s16 = ((const VkPhysicalDevice16BitStorageFeatures *)p)->storageBuffer16BitAccess; break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES:
            s16 = ((const VkPhysicalDeviceVulkan11Features *)p)->storageBuffer16BitAccess; break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES:
            f16 = ((const VkPhysicalDeviceShaderFloat16Int8Features *)p)->shaderFloat16; break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES:
            f16 = ((const VkPhysicalDeviceVulkan12Features *)p)->shaderFloat16;
            mm = ((const VkPhysicalDeviceVulkan12Features *)p)->vulkanMemoryModel; break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES:
            mm = ((const VkPhysicalDeviceVulkanMemoryModelFeatures *)p)->vulkanMemoryModel; break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT:
            sizectl = ((const VkPhysicalDeviceSubgroupSizeControlFeaturesEXT *)p)->subgroupSizeControl; break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES:
            sizectl = ((const VkPhysicalDeviceVulkan13Features *)p)->subgroupSizeControl; break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV:
            coop = ((const VkPhysicalDeviceCooperativeMatrixFeaturesNV *)p)->cooperativeMatrix; break;
        default: break;
        }
    }
    c->storage_16bit = c->storage_16bit && s16;
    c->fp16_arithmetic = c->fp16_arithmetic && f16;
    if (!(c->subgroup_size_control && sizectl)) {
        c->subgroup_size_control = 0;
        c->min_subgroup_size = c->max_subgroup_size = c->subgroup_size;
    }
    c->cooperative_matrix = coop && mm && c->storage_16bit && c->fp16_arithmetic &&
                            list_has(ext, next, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    int portability = 0;
    s = enn_device_has_extension(h->physical_device, "VK_KHR_portability_subset", &portability);
    if (s != ENN_OK) {
        free(ctx);
        return s;
    }
    ctx->enabled = (enn_enabled_features){
        .push_descriptors = c->push_descriptors,
        .storage_16bit = c->storage_16bit,
        .fp16_arithmetic = c->fp16_arithmetic,
        .subgroup_size_control = c->subgroup_size_control,
        .coopmat_nv = c->cooperative_matrix,
        .timestamps = c->timestamps,
        .shader_int64 = h->enabled_features && h->enabled_features->features.shaderInt64 && !ctx->env.disable_int64,
        .events = !portability,
    };
    return hand_over(ctx, ENN_OK, opt, out);
}

void enn_context_destroy(enn_context *ctx)
{
    if (!ctx) return;
    if (ctx->device) {
        /* Finish our own work only; an adopted queue may be busy with the caller's. */
        enn_context_wait_pending(ctx);
        /* Models and streams still alive (destroyed out of order): what their recorders
         * hold on the device goes now, or an adopted device would keep it. */
        enn_recorders_release(ctx);
        enn_pipelines_destroy(ctx);
        enn_transfer_destroy(ctx);
        enn_allocator_destroy(ctx);
    }
    free(ctx->pending_fences);
    if (ctx->owns_device && ctx->device) vkDestroyDevice(ctx->device, ctx->vk_callbacks);
    if (ctx->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(ctx->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy) destroy(ctx->instance, ctx->messenger, ctx->vk_callbacks);
    }
    if (ctx->owns_instance && ctx->instance) vkDestroyInstance(ctx->instance, ctx->vk_callbacks);
    free(ctx);
}

enn_status enn_context_capabilities(const enn_context *ctx, enn_capabilities *out)
{
    if (!ctx || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_capabilities: NULL argument");
    return ENN_STRUCT_WRITE("enn_capabilities", ENN_CAPABILITIES_SIZE_0_2, out, &ctx->caps);
}

uint32_t enn_context_validation_messages(const enn_context *ctx, const char **first)
{
    if (!ctx) return 0;
    enn_context *c = (enn_context *)ctx;
    uint32_t n = atomic_load(&c->validation_count);
    int ready = atomic_load_explicit(&c->validation_first_ready, memory_order_acquire);
    if (first) *first = !n ? "" : ready ? ctx->validation_first : "(the first message is being recorded on another thread)";
    return n;
}

enn_status enn_context_vulkan_handles(const enn_context *ctx, enn_vulkan_handles *out)
{
    if (!ctx || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_vulkan_handles: NULL argument");
    const enn_vulkan_handles h = {
        .instance = ctx->instance,
        .physical_device = ctx->physical_device,
        .device = ctx->device,
        .queue_family = ctx->queue_family,
        .queue = ctx->queue,
        .api_version = ctx->instance_api_version,
        .allocation_callbacks = ctx->vk_callbacks,
        .queue_lock = ctx->queue_lock,
        .queue_unlock = ctx->queue_unlock,
        .queue_lock_user = ctx->queue_lock_user,
    };
    return ENN_STRUCT_WRITE("enn_vulkan_handles", ENN_VULKAN_HANDLES_SIZE_0_2, out, &h);
}

VkResult enn_context_submit(enn_context *ctx, const VkSubmitInfo *submit, VkFence fence)
{
    if (ctx->queue_lock) ctx->queue_lock(ctx->queue_lock_user);
    VkResult r = vkQueueSubmit(ctx->queue, 1, submit, fence);
    if (ctx->queue_unlock) ctx->queue_unlock(ctx->queue_lock_user);
    return r;
}

enn_status enn_context_track_fence(enn_context *ctx, VkFence fence)
{
    if (ctx->pending_count == ctx->pending_capacity) {
        uint32_t cap = ctx->pending_capacity ? ctx->pending_capacity * 2 : 16;
        VkFence *f = realloc(ctx->pending_fences, cap * sizeof *f);
        if (!f) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "tracking a submission");
        ctx->pending_fences = f;
        ctx->pending_capacity = cap;
    }
    ctx->pending_fences[ctx->pending_count++] = fence;
    return ENN_OK;
}

void enn_context_untrack_fence(enn_context *ctx, VkFence fence)
{
    for (uint32_t i = 0; i < ctx->pending_count; i++)
        if (ctx->pending_fences[i] == fence) {
            ctx->pending_fences[i] = ctx->pending_fences[--ctx->pending_count];
            return;
        }
}

enn_status enn_context_vk_error(enn_context *ctx, VkResult r, const char *what)
{
    if (r != VK_ERROR_DEVICE_LOST) return enn_vk_error(r, what);
    ctx->device_lost = 1;
    return enn_error(ENN_ERROR_DEVICE_LOST, "the device was lost (%s: VK_ERROR_DEVICE_LOST: a driver reset or a "
                     "device fault): what it held is gone; destroy the context and create a new one", what);
}

enn_status enn_context_usable(const enn_context *ctx)
{
    if (!ctx->device_lost) return ENN_OK;
    return enn_error(ENN_ERROR_DEVICE_LOST, "the device was lost earlier (VK_ERROR_DEVICE_LOST): this context and "
                     "what it holds can no longer be used; destroy them and create a new context");
}

enn_status enn_context_wait_pending(enn_context *ctx)
{
    /* A lost device's writes never become visible: no host access after it. */
    ENN_TRY(enn_context_usable(ctx));
    if (!ctx->pending_count) return ENN_OK;
    ctx->host_waits++;
    VkResult r = vkWaitForFences(ctx->device, ctx->pending_count, ctx->pending_fences, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) return enn_context_vk_error(ctx, r, "vkWaitForFences (pending submissions)");
    ctx->pending_count = 0;
    return ENN_OK;
}

enn_status enn_context_wait_idle(enn_context *ctx)
{
    if (!ctx) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_context_wait_idle: ctx is NULL");
    return enn_context_wait_pending(ctx);
}

enn_status enn_device_capabilities(uint32_t index, enn_capabilities *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_device_capabilities: out is NULL");
    VkInstance inst;
    ENN_TRY(create_instance(NULL, 0, NULL, &inst));
    VkPhysicalDevice *devs = NULL;
    uint32_t n = 0;
    enn_status s = enumerate_devices(inst, &devs, &n);
    if (s == ENN_OK && index >= n)
        s = enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_device_capabilities: no device %u (there are %u)", index, n);
    enn_capabilities caps;
    if (s == ENN_OK) s = enn_query_capabilities(inst, devs[index], &caps);
    if (s == ENN_OK) {
        enn_apply_disable_switches(&caps);
        s = ENN_STRUCT_WRITE("enn_capabilities", ENN_CAPABILITIES_SIZE_0_2, out, &caps);
    }
    free(devs);
    vkDestroyInstance(inst, NULL);
    return s;
}

enn_status enn_list_devices(enn_device_info *infos, uint32_t capacity, uint32_t *count)
{
    if (!count) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_list_devices: count is NULL");
    *count = 0;
    VkInstance inst;
    ENN_TRY(create_instance(NULL, 0, NULL, &inst));
    VkPhysicalDevice *devs = NULL;
    uint32_t n = 0, chosen = UINT32_MAX;
    enn_status s = enumerate_devices(inst, &devs, &n);
    char why[512] = "";
    enn_status choice = ENN_OK;
    if (s == ENN_OK) {
        choice = enn_choose_device(devs, n, NULL, &chosen);
        if (choice != ENN_OK) {
            snprintf(why, sizeof why, "%s", enn_last_error());
            chosen = UINT32_MAX;
        }
        for (uint32_t i = 0; i < n && i < capacity && infos && s == ENN_OK; i++) {
            enn_capabilities caps;
            s = enn_query_capabilities(inst, devs[i], &caps);
            infos[i] = (enn_device_info){.index = i, .type = caps.device_type, .chosen = i == chosen};
            snprintf(infos[i].name, sizeof infos[i].name, "%s", caps.device_name);
        }
        if (s == ENN_OK) {
            *count = n;
            enn_error_clear();
            if (why[0]) (void)enn_error(choice, "%s", why);   /* why none is marked chosen */
        }
    }
    free(devs);
    vkDestroyInstance(inst, NULL);
    return s;
}
