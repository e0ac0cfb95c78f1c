/* enn-embed-example: libenn inside a program that owns the Vulkan device, as a renderer
 * or engine would.
 *
 *   1. creates its own VkInstance, picks a device (ENN_DEVICE: an index or part of the
 *      name; else discrete > integrated > virtual > CPU) and a queue family that does
 *      graphics and compute, and creates its VkDevice (with VK_KHR_push_descriptor when
 *      the device has it);
 *   2. hands them to libenn (enn_context_create_from_vulkan);
 *   3. trains a small ENN classifier to tell a noisy sine wave from a noisy square wave;
 *   4. streams held-out waves through the model frame by frame: each frame is written to
 *      the program's own host-visible buffer, one step is recorded with enn_stream_record
 *      into the program's own command buffer, submitted with its own fence, and the
 *      logits are read back from its own output buffer;
 *   5. destroys libenn's context before its own device.
 *
 * Exits 0 when the streamed classification beats chance clearly (accuracy >= 0.75 on
 * balanced classes), 1 otherwise, 2 on any error. ENN_VALIDATION=1 turns on the Khronos
 * validation layer on the program's instance; any message then fails the run.
 *
 *   enn-embed-example [--steps N] [--waves N] [--quiet] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#include "enn.h"
#include "enn_vulkan.h"

#define FEATURES 1
#define FRAMES 24u     /* frames per wave */
#define CLASSES 2      /* 0: sine, 1: square */
#define BATCH 32
#define STREAMS 4      /* waves streamed side by side */

static int quiet;
static unsigned validation_messages;

#define CHECK_VK(call)                                                          \
    do {                                                                        \
        VkResult r_ = (call);                                                   \
        if (r_ != VK_SUCCESS) {                                                 \
            fprintf(stderr, "%s failed: VkResult %d\n", #call, (int)r_);        \
            exit(2);                                                            \
        }                                                                       \
    } while (0)
#define CHECK_ENN(call)                                                                              \
    do {                                                                                             \
        enn_status s_ = (call);                                                                      \
        if (s_ != ENN_OK) {                                                                          \
            fprintf(stderr, "%s failed: %s: %s\n", #call, enn_status_name(s_), enn_last_error());   \
            exit(2);                                                                                 \
        }                                                                                            \
    } while (0)

/* ---- synthetic data: a noisy sine or square wave of random frequency and phase */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static double normal(void)
{
    double u = uniform() + 1e-12, v = uniform();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* x[FRAMES] for class `label`. */
static void make_wave(uint32_t label, float *x)
{
    double freq = 0.08 + 0.12 * uniform(), phase = 6.283185307179586 * uniform();
    for (uint32_t t = 0; t < FRAMES; t++) {
        double s = sin(6.283185307179586 * freq * t + phase);
        x[t] = (float)((label ? (s >= 0 ? 1.0 : -1.0) : s) + 0.3 * normal());
    }
}

/* ---- the program's own Vulkan objects */

typedef struct app {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice physical;
    uint32_t family;
    VkDevice device;
    VkQueue queue;
    const char *extensions[1];
    uint32_t extension_count;
} app;

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                   VkDebugUtilsMessageTypeFlagsEXT types,
                                                   const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)types, (void)user;
    if (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        validation_messages++;
        fprintf(stderr, "validation: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

/* Case-insensitive substring test (device names). */
static int contains(const char *hay, const char *needle)
{
    for (; *hay; hay++) {
        size_t i = 0;
        while (needle[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (!needle[i]) return 1;
    }
    return !*needle;
}

static int has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS) return 0;
    VkLayerProperties *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return 0;
    VkResult r = vkEnumerateInstanceLayerProperties(&n, p);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) n = 0;   /* VK_INCOMPLETE: the first n are valid */
    int found = 0;
    for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].layerName, name);
    free(p);
    return found;
}

static int has_device_extension(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS) return 0;
    VkExtensionProperties *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return 0;
    VkResult r = vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) n = 0;
    int found = 0;
    for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(p[i].extensionName, name);
    free(p);
    return found;
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

/* A queue family with graphics and compute (a renderer's main queue), else compute. */
static int pick_family(VkPhysicalDevice pd, uint32_t *out)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *p = calloc(n ? n : 1, sizeof *p);
    if (!p) return 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, p);
    int best = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(p[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (best < 0 || (p[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) best = (int)i;
        if (p[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) break;
    }
    free(p);
    if (best < 0) return 0;
    *out = (uint32_t)best;
    return 1;
}

static void app_create(app *a)
{
    memset(a, 0, sizeof *a);
    const char *v = getenv("ENN_VALIDATION");
    int validate = v && *v && strcmp(v, "0") && has_layer("VK_LAYER_KHRONOS_validation");
    const char *layers[] = {"VK_LAYER_KHRONOS_validation"};
    const char *inst_ext[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkApplicationInfo ai = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "enn-embed-example",
                            .apiVersion = VK_API_VERSION_1_1};
    VkDebugUtilsMessengerCreateInfoEXT mi = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &ai,
                               .pNext = validate ? &mi : NULL,
                               .enabledLayerCount = validate ? 1 : 0, .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = validate ? 1 : 0, .ppEnabledExtensionNames = inst_ext};
    CHECK_VK(vkCreateInstance(&ci, NULL, &a->instance));
    if (validate) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(a->instance, "vkCreateDebugUtilsMessengerEXT");
        if (create) CHECK_VK(create(a->instance, &mi, NULL, &a->messenger));
    }

    /* The device: ENN_DEVICE (index or part of the name), else the best kind. */
    uint32_t n = 0;
    CHECK_VK(vkEnumeratePhysicalDevices(a->instance, &n, NULL));
    VkPhysicalDevice *pds = calloc(n ? n : 1, sizeof *pds);
    if (!pds) {
        fprintf(stderr, "out of host memory\n");
        exit(2);
    }
    CHECK_VK(vkEnumeratePhysicalDevices(a->instance, &n, pds));
    const char *want = getenv("ENN_DEVICE");
    int best = -1, best_rank = -1;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pds[i], &p);
        uint32_t family;
        if (p.apiVersion < VK_API_VERSION_1_1 || !pick_family(pds[i], &family)) continue;
        int rank = type_rank(p.deviceType);
        if (want && *want) {
            char *end;
            unsigned long index = strtoul(want, &end, 10);
            int match = *end ? contains(p.deviceName, want) : index == i;
            if (!match) continue;
        }
        if (rank > best_rank) best = (int)i, best_rank = rank;
    }
    if (best < 0) {
        fprintf(stderr, "no Vulkan 1.1 device with a compute queue%s%s\n", want ? " matches ENN_DEVICE=" : "",
                want ? want : "");
        exit(2);
    }
    a->physical = pds[best];
    free(pds);
    pick_family(a->physical, &a->family);
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(a->physical, &props);
    if (!quiet) printf("device: %s (queue family %u)\n", props.deviceName, a->family);

    if (has_device_extension(a->physical, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME))
        a->extensions[a->extension_count++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = a->family,
                                  .queueCount = 1, .pQueuePriorities = &priority};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi, .enabledExtensionCount = a->extension_count,
                             .ppEnabledExtensionNames = a->extensions};
    CHECK_VK(vkCreateDevice(a->physical, &di, NULL, &a->device));
    vkGetDeviceQueue(a->device, a->family, 0, &a->queue);
}

static void app_destroy(app *a)
{
    vkDestroyDevice(a->device, NULL);
    if (a->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(a->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy) destroy(a->instance, a->messenger, NULL);
    }
    vkDestroyInstance(a->instance, NULL);
}

/* A host-visible, coherent buffer of the program's own, mapped. */
typedef struct host_buffer {
    VkBuffer buffer;
    VkDeviceMemory memory;
    void *mapped;
} host_buffer;

static void host_buffer_create(const app *a, VkDeviceSize bytes, VkBufferUsageFlags usage, host_buffer *out)
{
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes, .usage = usage,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    CHECK_VK(vkCreateBuffer(a->device, &bi, NULL, &out->buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(a->device, out->buffer, &req);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(a->physical, &mp);
    VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    uint32_t type = UINT32_MAX;
    for (uint32_t i = 0; i < mp.memoryTypeCount && type == UINT32_MAX; i++)
        if ((req.memoryTypeBits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want) type = i;
    if (type == UINT32_MAX) {
        fprintf(stderr, "no host-visible coherent memory\n");
        exit(2);
    }
    VkMemoryAllocateInfo mi = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                               .memoryTypeIndex = type};
    CHECK_VK(vkAllocateMemory(a->device, &mi, NULL, &out->memory));
    CHECK_VK(vkBindBufferMemory(a->device, out->buffer, out->memory, 0));
    CHECK_VK(vkMapMemory(a->device, out->memory, 0, VK_WHOLE_SIZE, 0, &out->mapped));
}

static void host_buffer_destroy(const app *a, host_buffer *b)
{
    vkUnmapMemory(a->device, b->memory);
    vkDestroyBuffer(a->device, b->buffer, NULL);
    vkFreeMemory(a->device, b->memory, NULL);
}

/* ---- training with libenn */

static void train(enn_model *model, int steps)
{
    float x[BATCH * FRAMES];
    uint32_t labels[BATCH];
    double loss = 0;
    uint32_t correct = 0, counted = 0, window = 0;
    for (int step = 1; step <= steps; step++) {
        for (uint32_t b = 0; b < BATCH; b++) {
            labels[b] = b % CLASSES;
            make_wave(labels[b], x + b * FRAMES);
        }
        enn_batch batch = {.size = BATCH, .seq_len = FRAMES, .x = x, .labels = labels};
        enn_step_result r;
        CHECK_ENN(enn_model_train_step(model, &batch, &r));
        loss += r.loss, correct += r.correct, counted += r.counted, window++;
        if (step % 50 == 0 || step == steps) {
            if (!quiet)
                printf("train step %4d  loss %.4f  accuracy %.3f\n", step, loss / window,
                       counted ? (double)correct / counted : 0.0);
            loss = 0, correct = counted = window = 0;
        }
    }
}

int main(int argc, char **argv)
{
    int steps = 300, wave_count = 48;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--waves") && i + 1 < argc) wave_count = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else {
            fprintf(stderr, "usage: %s [--steps N] [--waves N] [--quiet]\n", argv[0]);
            return 2;
        }
    }
    if (steps < 1 || wave_count < STREAMS) {
        fprintf(stderr, "--steps must be >= 1 and --waves >= %d\n", STREAMS);
        return 2;
    }
    app a;
    app_create(&a);

    /* 2. libenn on the program's device. struct_size = sizeof: every field this enn_vulkan.h
     * has is read (0 would mean the libenn 0.2 fields only; enn.h, "structs that grow"). */
    enn_vulkan_handles handles = {.struct_size = sizeof(enn_vulkan_handles),
                                  .api_version = VK_API_VERSION_1_1, /* what the instance was made for */
                                  .instance = a.instance, .physical_device = a.physical, .device = a.device,
                                  .queue_family = a.family, .queue = a.queue,
                                  .enabled_device_extensions = a.extensions,
                                  .enabled_device_extension_count = a.extension_count};
    enn_context *ctx;
    CHECK_ENN(enn_context_create_from_vulkan(&handles, NULL, &ctx));

    /* 3. A small classifier, trained briefly. */
    enn_model_config config;
    enn_model_config_init(&config, ENN_HEAD_CLASSIFIER);
    config.input_features = FEATURES;
    config.max_seq_len = FRAMES;
    config.max_batch = BATCH;
    config.outputs = CLASSES;
    config.cell.hidden = 32;
    config.cell.memory_slots = 16;
    config.dropout = 0.1f;
    config.optimizer.learning_rate = 3e-3f;
    config.seed = 1;
    enn_model *model;
    CHECK_ENN(enn_model_create(ctx, &config, &model));
    train(model, steps);

    /* 4. Streaming inference, frame by frame, in the program's own command buffers. */
    enn_stream *stream;
    CHECK_ENN(enn_stream_create(model, STREAMS, &stream));
    host_buffer in, out;
    host_buffer_create(&a, STREAMS * FEATURES * sizeof(float), VK_BUFFER_USAGE_TRANSFER_SRC_BIT, &in);
    host_buffer_create(&a, STREAMS * CLASSES * sizeof(float), VK_BUFFER_USAGE_TRANSFER_DST_BIT, &out);
    VkCommandPool pool;
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = a.family};
    CHECK_VK(vkCreateCommandPool(a.device, &pci, NULL, &pool));
    VkCommandBuffer cmd;
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    CHECK_VK(vkAllocateCommandBuffers(a.device, &cai, &cmd));
    VkFence fence;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    CHECK_VK(vkCreateFence(a.device, &fci, NULL, &fence));
    enn_stream_io io = {.input = in.buffer, .output = out.buffer};

    uint32_t correct = 0, total = 0;
    float waves[STREAMS][FRAMES];
    uint32_t labels[STREAMS];
    for (uint32_t group = 0; group < (uint32_t)wave_count / STREAMS; group++) {
        for (uint32_t s = 0; s < STREAMS; s++) {
            labels[s] = (group * STREAMS + s) % CLASSES;
            make_wave(labels[s], waves[s]);
        }
        CHECK_ENN(enn_stream_reset(stream));
        const float *logits = out.mapped;
        for (uint32_t t = 0; t < FRAMES; t++) {
            /* A renderer would produce the frame on the GPU; here the host writes it. */
            float *x = in.mapped;
            for (uint32_t s = 0; s < STREAMS; s++) x[s] = waves[s][t];
            CHECK_VK(vkResetCommandBuffer(cmd, 0));
            VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                           .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
            CHECK_VK(vkBeginCommandBuffer(cmd, &bi));
            /* ... the program's own work before ... */
            CHECK_ENN(enn_stream_record(stream, cmd, &io));
            /* ... and after: libenn's closing barrier makes `out` visible to it. */
            CHECK_VK(vkEndCommandBuffer(cmd));
            VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
            CHECK_VK(vkQueueSubmit(a.queue, 1, &si, fence));
            CHECK_VK(vkWaitForFences(a.device, 1, &fence, VK_TRUE, UINT64_MAX));
            CHECK_VK(vkResetFences(a.device, 1, &fence));
            if (!quiet && group == 0) {
                /* The first group's streams, frame by frame: P(square) as evidence comes in. */
                printf("frame %2u", t + 1);
                for (uint32_t s = 0; s < STREAMS; s++) {
                    double p1 = 1.0 / (1.0 + exp((double)logits[s * CLASSES] - logits[s * CLASSES + 1]));
                    printf("  [%s % .2f] P(square) %.2f", labels[s] ? "square" : "sine  ", waves[s][t], p1);
                }
                printf("\n");
            }
        }
        for (uint32_t s = 0; s < STREAMS; s++) {
            uint32_t guess = logits[s * CLASSES + 1] > logits[s * CLASSES] ? 1 : 0;
            correct += guess == labels[s];
            total++;
        }
    }
    double accuracy = (double)correct / total;
    printf("streamed %u waves of %u frames: accuracy %.3f (chance 0.5)\n", total, FRAMES, accuracy);

    /* 5. libenn first, then the program's own objects and device. */
    vkDestroyFence(a.device, fence, NULL);
    vkDestroyCommandPool(a.device, pool, NULL);
    host_buffer_destroy(&a, &in);
    host_buffer_destroy(&a, &out);
    enn_stream_destroy(stream);
    enn_model_destroy(model);
    enn_context_destroy(ctx);
    app_destroy(&a);
    if (validation_messages) {
        fprintf(stderr, "%u validation messages\n", validation_messages);
        return 1;
    }
    return accuracy >= 0.75 ? 0 : 1;
}
