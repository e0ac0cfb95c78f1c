#include "own_vulkan.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (!strcmp(msg, "VK_ERROR_OUT_OF_HOST_MEMORY")) return VK_FALSE; /* an injected failure, reported */
    if (atomic_fetch_add(&own_messages, 1) == 0) snprintf(own_first, sizeof own_first, "%s", msg);
    fprintf(stderr, "[test's own messenger] %s\n", msg);
    return VK_FALSE;
}

unsigned test_own_vulkan_messages(void) { return atomic_load(&own_messages); }
const char *test_own_vulkan_first_message(void) { return own_first; }

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

void test_own_vulkan_create(test_own_vulkan *v, const char *app_name, int extras, const VkAllocationCallbacks *callbacks)
{
    memset(v, 0, sizeof *v);
    v->callbacks = callbacks;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = app_name,
                             .apiVersion = VK_API_VERSION_1_1};
    const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    /* Chained to the instance too, so that its creation and destruction are covered. */
    VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_own_message};
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = &mi,
                                .pApplicationInfo = &app, .enabledLayerCount = 1, .ppEnabledLayerNames = layers,
                                .enabledExtensionCount = 1, .ppEnabledExtensionNames = exts};
    cr_assert_eq(vkCreateInstance(&ici, callbacks, &v->instance), VK_SUCCESS, "vkCreateInstance with validation");
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(v->instance, "vkCreateDebugUtilsMessengerEXT");
    cr_assert_not_null(create_messenger);
    cr_assert_eq(create_messenger(v->instance, &mi, callbacks, &v->messenger), VK_SUCCESS);

    test_pick_physical_device(v->instance, &v->pd, &v->family);

    v->push_descriptors = extras && device_has_extension(v->pd, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    VkPhysicalDevice16BitStorageFeatures have16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 have = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &have16};
    vkGetPhysicalDeviceFeatures2(v->pd, &have);
    v->storage_16bit = extras && have16.storageBuffer16BitAccess;
    v->s16 = (VkPhysicalDevice16BitStorageFeatures){.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                     .storageBuffer16BitAccess = v->storage_16bit ? VK_TRUE : VK_FALSE};
    v->features = (VkPhysicalDeviceFeatures2){.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &v->s16};
    const char *dev_exts[1] = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = v->family, .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &v->features,
                              .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = v->push_descriptors ? 1 : 0, .ppEnabledExtensionNames = dev_exts};
    cr_assert_eq(vkCreateDevice(v->pd, &dci, callbacks, &v->device), VK_SUCCESS);
    vkGetDeviceQueue(v->device, v->family, 0, &v->queue);
}

void test_own_vulkan_destroy(test_own_vulkan *v)
{
    vkDestroyDevice(v->device, v->callbacks); /* the layer reports objects left on the device here */
    PFN_vkDestroyDebugUtilsMessengerEXT destroy =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(v->instance, "vkDestroyDebugUtilsMessengerEXT");
    cr_assert_not_null(destroy);
    destroy(v->instance, v->messenger, v->callbacks);
    vkDestroyInstance(v->instance, v->callbacks);
}
