/* A Vulkan instance and device of the test's own, made as an engine would make them, for
 * the suites that hand libenn a device (test_runtime_adopt, test_runtime_allocation): the
 * validation layer on, and a messenger of the test's that counts what the layer reports
 * about the objects libenn made on that device. */
#ifndef ENN_TEST_OWN_VULKAN_H
#define ENN_TEST_OWN_VULKAN_H

#include <vulkan/vulkan.h>

typedef struct test_own_vulkan {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pd;
    VkDevice device;
    uint32_t family;
    VkQueue queue;
    const VkAllocationCallbacks *callbacks;   /* the engine's, for its own objects; NULL: none */
    int push_descriptors;                     /* VK_KHR_push_descriptor enabled on the device */
    int storage_16bit;                        /* 16-bit storage buffers enabled */
    VkPhysicalDevice16BitStorageFeatures s16; /* what was enabled, to tell libenn */
    VkPhysicalDeviceFeatures2 features;
} test_own_vulkan;

/* The instance (validation, messenger), the device test_device() names, and a VkDevice with
 * one compute queue; with `extras`, VK_KHR_push_descriptor and 16-bit storage buffers where
 * the device offers them. Every object is made with `callbacks` (may be NULL). Fails the
 * test when any step fails. */
void test_own_vulkan_create(test_own_vulkan *v, const char *app_name, int extras,
                            const VkAllocationCallbacks *callbacks);
/* Destroys the device (the layer reports objects left on it then), messenger, instance. */
void test_own_vulkan_destroy(test_own_vulkan *v);

/* Warnings and errors the messenger has seen since the process began, and the first. The
 * layer's report of an allocation failure that a test injected is not counted. */
unsigned test_own_vulkan_messages(void);
const char *test_own_vulkan_first_message(void);

#endif
