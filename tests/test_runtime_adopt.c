/* Adoption: a program that owns its Vulkan instance and device (with its own validation
 * layer and messenger) hands them to libenn, runs work, destroys the libenn context, and
 * finds its objects intact: still usable, nothing of libenn's left on them (the layer
 * reports leaked objects at vkDestroyDevice), and not one validation message. */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enn_vulkan.h"
#include "harness.h"
#include "ops/gemm.h"
#include "runtime_helpers.h"

static atomic_uint own_messages;
static char own_first[2048];

static VKAPI_ATTR VkBool32 VKAPI_CALL on_own_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types;
    (void)user;
    if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    const char *msg = data && data->pMessage ? data->pMessage : "(no text)";
    if (atomic_fetch_add(&own_messages, 1) == 0) snprintf(own_first, sizeof own_first, "%s", msg);
    fprintf(stderr, "[test's own messenger] %s\n", msg);
    return VK_FALSE;
}

static VkDebugUtilsMessengerCreateInfoEXT messenger_info(void)
{
    return (VkDebugUtilsMessengerCreateInfoEXT){
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_own_message,
    };
}

static int device_has_extension(VkPhysicalDevice pd, const char *ext)
{
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *p = calloc(n ? n : 1, sizeof *p);
    cr_assert_not_null(p);
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p);
    int found = 0;
    for (uint32_t i = 0; i < n; i++) found |= !strcmp(p[i].extensionName, ext);
    free(p);
    return found;
}

typedef struct own_vulkan {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice device;
    uint32_t family;
    VkQueue queue;
    int push_descriptors;
    int storage_16bit;                      /* enabled on the device */
    VkPhysicalDevice16BitStorageFeatures s16; /* what was enabled, to tell libenn */
    VkPhysicalDeviceFeatures2 features;
} own_vulkan;

/* The test's own instance (validation + messenger), the test device, and a VkDevice
 * with one compute queue and, if asked and offered, VK_KHR_push_descriptor and 16-bit
 * storage buffers. */
static void own_create(own_vulkan *v, int want_extras)
{
    memset(v, 0, sizeof *v);
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "adopt-test",
                             .apiVersion = VK_API_VERSION_1_1};
    const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT mi = messenger_info(); /* also covers create/destroy instance */
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = &mi,
                                .pApplicationInfo = &app, .enabledLayerCount = 1, .ppEnabledLayerNames = layers,
                                .enabledExtensionCount = 1, .ppEnabledExtensionNames = exts};
    cr_assert_eq(vkCreateInstance(&ici, NULL, &v->instance), VK_SUCCESS, "vkCreateInstance with validation");
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(v->instance, "vkCreateDebugUtilsMessengerEXT");
    cr_assert_not_null(create_messenger);
    cr_assert_eq(create_messenger(v->instance, &mi, NULL, &v->messenger), VK_SUCCESS);

    test_pick_physical_device(v->instance, &v->pd, &v->family);

    v->push_descriptors = want_extras && device_has_extension(v->pd, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    VkPhysicalDevice16BitStorageFeatures have16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 have = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &have16};
    vkGetPhysicalDeviceFeatures2(v->pd, &have);
    v->storage_16bit = want_extras && have16.storageBuffer16BitAccess;
    v->s16 = (VkPhysicalDevice16BitStorageFeatures){.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                     .storageBuffer16BitAccess = v->storage_16bit ? VK_TRUE : VK_FALSE};
    v->features = (VkPhysicalDeviceFeatures2){.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &v->s16};
    const char *dev_exts[1] = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = v->family, .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &v->features,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci, .enabledExtensionCount = v->push_descriptors ? 1 : 0,
                              .ppEnabledExtensionNames = dev_exts};
    cr_assert_eq(vkCreateDevice(v->pd, &dci, NULL, &v->device), VK_SUCCESS);
    vkGetDeviceQueue(v->device, v->family, 0, &v->queue);
}

/* The device and instance still work after libenn is gone. */
static void own_check_alive(own_vulkan *v)
{
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 4096,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer buf;
    cr_assert_eq(vkCreateBuffer(v->device, &bi, NULL, &buf), VK_SUCCESS, "the device no longer makes buffers");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(v->device, buf, &req);
    cr_assert_gt(req.size, 0);
    vkDestroyBuffer(v->device, buf, NULL);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = v->family};
    VkCommandPool pool;
    cr_assert_eq(vkCreateCommandPool(v->device, &pci, NULL, &pool), VK_SUCCESS);
    vkDestroyCommandPool(v->device, pool, NULL);
    cr_assert_eq(vkQueueWaitIdle(v->queue), VK_SUCCESS);
    cr_assert_eq(vkDeviceWaitIdle(v->device), VK_SUCCESS);
    uint32_t n = 0;
    cr_assert_eq(vkEnumeratePhysicalDevices(v->instance, &n, NULL), VK_SUCCESS, "the instance no longer works");
    cr_assert_gt(n, 0);
}

static void own_destroy(own_vulkan *v)
{
    vkDestroyDevice(v->device, NULL); /* the layer reports objects left on the device here */
    PFN_vkDestroyDebugUtilsMessengerEXT destroy =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(v->instance, "vkDestroyDebugUtilsMessengerEXT");
    cr_assert_not_null(destroy);
    destroy(v->instance, v->messenger, NULL);
    vkDestroyInstance(v->instance, NULL);
}

static void adopt(int want_extras)
{
    test_sync_validation();
    own_vulkan v;
    own_create(&v, want_extras);
    const char *ext[1] = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
    enn_vulkan_handles h = {.api_version = VK_API_VERSION_1_1, .instance = v.instance, .physical_device = v.pd,
                            .device = v.device, .queue_family = v.family, .queue = v.queue,
                            .enabled_device_extensions = v.push_descriptors ? ext : NULL,
                            .enabled_device_extension_count = v.push_descriptors ? 1 : 0,
                            .enabled_features = want_extras ? &v.features : NULL};
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create_from_vulkan(&h, NULL, &ctx));

    enn_vulkan_handles back;
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &back));
    cr_expect_eq(back.device, v.device);
    cr_expect_eq(back.queue, v.queue);
    cr_expect_eq(back.instance, v.instance);
    cr_expect_eq(back.queue_family, v.family);
    cr_expect_eq(back.api_version, VK_API_VERSION_1_1);
    enn_capabilities caps;
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    cr_expect_eq(caps.push_descriptors, v.push_descriptors, "libenn should use exactly the extensions it was given");
    cr_expect_eq(caps.storage_16bit, v.storage_16bit, "libenn should use exactly the features it was given");
    cr_log_info("adopted: push descriptors %d, 16-bit storage %d", caps.push_descriptors, caps.storage_16bit);

    /* Buffers, transfers and a chain of 100 dependent dispatches: y = 100 x. */
    enum { N = 2048, STEPS = 100 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i % 29) - 14.0f;
    enn_buffer *bx, *by;
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof x, &bx));
    ENN_ASSERT_OK(enn_buffer_create(ctx, sizeof y, &by));
    ENN_ASSERT_OK(enn_buffer_upload(ctx, bx, 0, x, sizeof x));
    const enn_pipeline *p = test_axpby_pipeline(ctx);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_record_fill(rec, by, 0, 0, 0));
    for (int s = 0; s < STEPS; s++) ENN_ASSERT_OK(test_record_axpby(rec, p, ENN_IN(bx), ENN_INOUT(by), N, 1, 1));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    ENN_ASSERT_OK(enn_buffer_download(ctx, by, 0, y, sizeof y));
    for (int i = 0; i < N; i++) cr_assert_eq(y[i], x[i] * STEPS, "y[%d] = %g, want %g", i, y[i], x[i] * STEPS);
    /* A buffer and the recorder (what a model or stream holds) are left alive for
     * enn_context_destroy to release: the caller's device must still end clean. */
    enn_buffer_destroy(ctx, bx);
    enn_context_destroy(ctx);
    (void)rec;
    (void)by;

    cr_expect_eq(atomic_load(&own_messages), 0, "%u message(s) while libenn ran; first: %s",
                 atomic_load(&own_messages), own_first);
    own_check_alive(&v);
    own_destroy(&v);
    cr_assert_eq(atomic_load(&own_messages), 0, "%u message(s) (leaked objects?); first: %s",
                 atomic_load(&own_messages), own_first);
}

Test(runtime_adopt, with_extensions_and_features) { adopt(1); }
Test(runtime_adopt, core_only) { adopt(0); }

/* An adopted device's context, too, reads the environment when it is created: a GEMM
 * variant asked for then is still asked for (and refused by name) once unset. */
Test(runtime_adopt, environment_read_at_adoption)
{
    own_vulkan v;
    own_create(&v, 0);
    enn_vulkan_handles h = {.api_version = VK_API_VERSION_1_1, .instance = v.instance, .physical_device = v.pd,
                            .device = v.device, .queue_family = v.family, .queue = v.queue};
    test_setenv("ENN_GEMM_VARIANT", "fastest");
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create_from_vulkan(&h, NULL, &ctx));
    unsetenv("ENN_GEMM_VARIANT");
    enn_gemm_desc d = ENN_GEMM_DESC_INIT;
    enn_gemm_variant picked;
    cr_expect_eq(enn_gemm_pick_variant(ctx, &d, &picked), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "ENN_GEMM_VARIANT=fastest"), "%s", enn_last_error());
    enn_context_destroy(ctx);
    own_destroy(&v);
    cr_assert_eq(atomic_load(&own_messages), 0, "%u message(s); first: %s", atomic_load(&own_messages), own_first);
}

/* The test's messenger is not deaf: a buffer left on the device is reported when the
 * device is destroyed (so the zero above means something). */
Test(runtime_adopt, own_messenger_sees_leaks)
{
    own_vulkan v;
    own_create(&v, 0);
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 4096,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer leaked;
    cr_assert_eq(vkCreateBuffer(v.device, &bi, NULL, &leaked), VK_SUCCESS);
    own_destroy(&v);
    cr_expect_geq(atomic_load(&own_messages), 1, "a buffer leaked on the device was not reported");
}

/* Handles that cannot be adopted are refused with a message. */
Test(runtime_adopt, bad_handles)
{
    own_vulkan v;
    own_create(&v, 0);
    enn_context *ctx = (enn_context *)1;
    enn_vulkan_handles h = {.api_version = VK_API_VERSION_1_1, .instance = v.instance, .physical_device = v.pd,
                            .device = VK_NULL_HANDLE, .queue_family = v.family, .queue = v.queue};
    cr_expect_eq(enn_context_create_from_vulkan(&h, NULL, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_null(ctx);
    cr_expect(strstr(enn_last_error(), "device"), "message: %s", enn_last_error());
    cr_expect_eq(enn_context_create_from_vulkan(NULL, NULL, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_neq(enn_last_error()[0], '\0');
    h.device = v.device;
    h.queue_family = 999;
    cr_expect_eq(enn_context_create_from_vulkan(&h, NULL, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "999"), "message: %s", enn_last_error());
    h.queue_family = v.family;
    cr_expect_eq(enn_context_create_from_vulkan(&h, NULL, NULL), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_neq(enn_last_error()[0], '\0');
    /* An instance made for Vulkan 1.0 (or an api_version not given); an extension count
     * without its list; a feature chain that does not start with VkPhysicalDeviceFeatures2. */
    h.api_version = 0;
    cr_expect_eq(enn_context_create_from_vulkan(&h, NULL, &ctx), ENN_ERROR_UNSUPPORTED);
    cr_expect(strstr(enn_last_error(), "apiVersion 1.1 or later"), "message: %s", enn_last_error());
    h.api_version = VK_API_VERSION_1_1;
    h.enabled_device_extension_count = 3;
    cr_expect_eq(enn_context_create_from_vulkan(&h, NULL, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "enabled_device_extensions is NULL"), "message: %s", enn_last_error());
    h.enabled_device_extension_count = 0;
    VkPhysicalDeviceVulkan11Features not_head = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    h.enabled_features = (const VkPhysicalDeviceFeatures2 *)&not_head;
    cr_expect_eq(enn_context_create_from_vulkan(&h, NULL, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "VkPhysicalDeviceFeatures2"), "message: %s", enn_last_error());
    cr_expect_null(ctx);
    own_destroy(&v);
    cr_expect_eq(atomic_load(&own_messages), 0, "first: %s", own_first);
}
