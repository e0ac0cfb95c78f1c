/* Adoption: a program that owns its Vulkan instance and device (with its own validation
 * layer and messenger) hands them to libenn, runs work, destroys the libenn context, and
 * finds its objects intact: still usable, nothing of libenn's left on them (the layer
 * reports leaked objects at vkDestroyDevice), and not one validation message. Also the
 * struct_size of enn_vulkan_handles, adopted and handed back. */
#include <ctype.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enn_vulkan.h"
#include "harness.h"
#include "ops/gemm.h"
#include "own_vulkan.h"
#include "runtime_helpers.h"
#include "small_config.h"

/* The device and instance still work after libenn is gone. */
static void own_check_alive(test_own_vulkan *v)
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


static void adopt(int want_extras)
{
    test_sync_validation();
    test_own_vulkan v;
    test_own_vulkan_create(&v, "adopt-test", want_extras, NULL);
    const char *ext[1] = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
    enn_vulkan_handles h = {.api_version = VK_API_VERSION_1_1, .instance = v.instance, .physical_device = v.pd,
                            .device = v.device, .queue_family = v.family, .queue = v.queue,
                            .enabled_device_extensions = v.push_descriptors ? ext : NULL,
                            .enabled_device_extension_count = v.push_descriptors ? 1 : 0,
                            .enabled_features = want_extras ? &v.features : NULL};
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create_from_vulkan(&h, NULL, &ctx));

    enn_vulkan_handles back = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &back));
    cr_expect_eq(back.device, v.device);
    cr_expect_eq(back.queue, v.queue);
    cr_expect_eq(back.instance, v.instance);
    cr_expect_eq(back.queue_family, v.family);
    cr_expect_eq(back.api_version, VK_API_VERSION_1_1);
    enn_capabilities caps = {0};
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

    cr_expect_eq(test_own_vulkan_messages(), 0, "%u message(s) while libenn ran; first: %s",
                 test_own_vulkan_messages(), test_own_vulkan_first_message());
    own_check_alive(&v);
    test_own_vulkan_destroy(&v);
    cr_assert_eq(test_own_vulkan_messages(), 0, "%u message(s) (leaked objects?); first: %s",
                 test_own_vulkan_messages(), test_own_vulkan_first_message());
}

Test(runtime_adopt, with_extensions_and_features) { adopt(1); }
Test(runtime_adopt, core_only) { adopt(0); }

/* An adopted device's context, too, reads the environment when it is created: a GEMM
 * variant asked for then is still asked for (and refused by name) once unset. */
Test(runtime_adopt, environment_read_at_adoption)
{
    test_own_vulkan v;
    test_own_vulkan_create(&v, "adopt-test", 0, NULL);
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
    test_own_vulkan_destroy(&v);
    cr_assert_eq(test_own_vulkan_messages(), 0, "%u message(s); first: %s", test_own_vulkan_messages(),
                 test_own_vulkan_first_message());
}

/* The test's messenger is not deaf: a buffer left on the device is reported when the
 * device is destroyed (so the zero above means something). */
Test(runtime_adopt, own_messenger_sees_leaks)
{
    test_own_vulkan v;
    test_own_vulkan_create(&v, "adopt-test", 0, NULL);
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 4096,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer leaked;
    cr_assert_eq(vkCreateBuffer(v.device, &bi, NULL, &leaked), VK_SUCCESS);
    test_own_vulkan_destroy(&v);
    cr_expect_geq(test_own_vulkan_messages(), 1, "a buffer leaked on the device was not reported");
}

/* Handles that cannot be adopted are refused with a message. */
Test(runtime_adopt, bad_handles)
{
    test_own_vulkan v;
    test_own_vulkan_create(&v, "adopt-test", 0, NULL);
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
    /* A queue lock without its unlock. */
    h.enabled_features = NULL;
    h.queue_lock = (void (*)(void *))abort;
    cr_expect_eq(enn_context_create_from_vulkan(&h, NULL, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), "queue_unlock is NULL"), "message: %s", enn_last_error());
    cr_expect_null(ctx);
    test_own_vulkan_destroy(&v);
    cr_expect_eq(test_own_vulkan_messages(), 0, "first: %s", test_own_vulkan_first_message());
}

/* ---- struct_size (enn.h, "structs that grow") of enn_vulkan_handles, both ways */

/* The handles as a newer enn_vulkan.h would lay them out: the struct, then fields this
 * libenn does not know. Also the caller's buffer for enn_context_vulkan_handles, whose
 * bytes after the struct are guards. */
typedef struct newer_handles {
    enn_vulkan_handles h;
    unsigned char newer[16];
} newer_handles;

static newer_handles handles_of(const test_own_vulkan *v, uint32_t struct_size)
{
    newer_handles n;
    memset(&n, 0, sizeof n);
    n.h.struct_size = struct_size;
    n.h.api_version = VK_API_VERSION_1_1;
    n.h.instance = v->instance;
    n.h.physical_device = v->pd;
    n.h.device = v->device;
    n.h.queue_family = v->family;
    n.h.queue = v->queue;
    return n;
}

/* Adopted with struct_size 0, exactly this struct, or a newer struct with its new fields
 * zero; handed back into a struct of 0 (the 0.2 size), the 0.2 size or a larger one,
 * never past it. */
Test(runtime_adopt, handles_struct_size_zero_and_larger)
{
    test_own_vulkan v;
    test_own_vulkan_create(&v, "adopt-test", 0, NULL);
    const uint32_t sizes[] = {0, (uint32_t)sizeof(enn_vulkan_handles), (uint32_t)sizeof(newer_handles)};
    const uint32_t written[] = {(uint32_t)ENN_VULKAN_HANDLES_SIZE_0_2, (uint32_t)ENN_VULKAN_HANDLES_SIZE_0_2,
                                (uint32_t)sizeof(enn_vulkan_handles)};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        newer_handles in = handles_of(&v, sizes[i]);
        enn_context *ctx = NULL;
        ENN_ASSERT_OK(enn_context_create_from_vulkan(&in.h, NULL, &ctx));
        newer_handles back;
        memset(&back, 0xA5, sizeof back);
        back.h.struct_size = sizes[i];
        ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &back.h));
        cr_expect_eq(back.h.struct_size, written[i], "struct_size %u came back as %u", sizes[i], back.h.struct_size);
        cr_expect(back.h.device == v.device && back.h.queue == v.queue && back.h.instance == v.instance,
                  "struct_size %u: not the adopted objects", sizes[i]);
        cr_expect(test_all_bytes(back.newer, sizeof back.newer, 0xA5), "struct_size %u: written past the struct",
                  sizes[i]);
        enn_context_destroy(ctx);
    }
    test_own_vulkan_destroy(&v);
    cr_expect_eq(test_own_vulkan_messages(), 0, "first: %s", test_own_vulkan_first_message());
}

Test(runtime_adopt, handles_struct_size_refused)
{
    test_own_vulkan v;
    test_own_vulkan_create(&v, "adopt-test", 0, NULL);
    newer_handles in = handles_of(&v, sizeof(newer_handles));
    in.newer[0] = 1;   /* fields this libenn does not know, set */
    in.newer[9] = 2;
    enn_context *ctx = (enn_context *)1;
    cr_expect_eq(enn_context_create_from_vulkan(&in.h, NULL, &ctx), ENN_ERROR_UNSUPPORTED);
    cr_expect_null(ctx);
    char bytes[64];
    snprintf(bytes, sizeof bytes, "(bytes %zu..%zu;", sizeof in.h, sizeof in.h + 9);
    cr_expect(strstr(enn_last_error(), "enn_vulkan_handles") && strstr(enn_last_error(), bytes) &&
                  strstr(enn_last_error(), enn_version()),
              "want the struct, %s and the version: %s", bytes, enn_last_error());

    char below[96];
    snprintf(below, sizeof below, "enn_vulkan_handles.struct_size is 12, below the %zu bytes",
             (size_t)ENN_VULKAN_HANDLES_SIZE_0_2);
    in = handles_of(&v, 12);
    cr_expect_eq(enn_context_create_from_vulkan(&in.h, NULL, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), below), "want \"%s\": %s", below, enn_last_error());

    /* Handing them back into a struct that small is refused the same way, writing nothing. */
    in = handles_of(&v, 0);
    ENN_ASSERT_OK(enn_context_create_from_vulkan(&in.h, NULL, &ctx));
    newer_handles back;
    memset(&back, 0xA5, sizeof back);
    back.h.struct_size = 12;
    cr_expect_eq(enn_context_vulkan_handles(ctx, &back.h), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), below), "want \"%s\": %s", below, enn_last_error());
    cr_expect(test_all_bytes((const unsigned char *)&back + sizeof back.h.struct_size,
                        sizeof back - sizeof back.h.struct_size, 0xA5),
              "a refused call wrote into the struct");
    enn_context_destroy(ctx);
    test_own_vulkan_destroy(&v);
    cr_expect_eq(test_own_vulkan_messages(), 0, "first: %s", test_own_vulkan_first_message());
}

/* ---- a queue shared with the caller's other threads (enn_vulkan_handles.queue_lock) */

typedef struct shared_queue {
    pthread_mutex_t mutex;
    VkQueue queue;
    pthread_t trainer;          /* the thread of the enn_* calls */
    atomic_uint locks, unlocks; /* libenn's calls of the callbacks */
    atomic_int held;            /* libenn holds the mutex */
    atomic_int misuse;          /* a nested lock, an unlock without a lock, another thread */
    atomic_int stop;
    atomic_uint render_submits;
} shared_queue;

static void queue_lock(void *user)
{
    shared_queue *q = user;
    if (!pthread_equal(pthread_self(), q->trainer) || atomic_load(&q->held)) atomic_store(&q->misuse, 1);
    pthread_mutex_lock(&q->mutex);
    atomic_store(&q->held, 1);
    atomic_fetch_add(&q->locks, 1);
}

static void queue_unlock(void *user)
{
    shared_queue *q = user;
    if (!pthread_equal(pthread_self(), q->trainer) || !atomic_load(&q->held)) atomic_store(&q->misuse, 1);
    atomic_store(&q->held, 0);
    atomic_fetch_add(&q->unlocks, 1);
    pthread_mutex_unlock(&q->mutex);
}

/* The engine's render thread: submits to the queue, under its mutex, until told to stop. */
static void *render_thread(void *arg)
{
    shared_queue *q = arg;
    while (!atomic_load(&q->stop)) {
        pthread_mutex_lock(&q->mutex);
        VkResult r = vkQueueSubmit(q->queue, 0, NULL, VK_NULL_HANDLE);
        pthread_mutex_unlock(&q->mutex);
        if (r != VK_SUCCESS) return (void *)1;
        atomic_fetch_add(&q->render_submits, 1);
        sched_yield();
    }
    return NULL;
}

/* A render thread submits to the queue all the while libenn trains a model on it, with
 * staging forced so that uploads and downloads submit too, and the render thread's mutex
 * given as libenn's queue lock: libenn takes it once around each submission (on the
 * training thread, never nested) and the validation layer's thread-safety check sees no
 * two threads on the queue at once. */
Test(runtime_adopt, queue_shared_with_a_render_thread, .timeout = 120)
{
    test_sync_validation();
    test_own_vulkan v;
    test_own_vulkan_create(&v, "adopt-test", 0, NULL);
    shared_queue q = {.queue = v.queue, .trainer = pthread_self()};
    pthread_mutex_init(&q.mutex, NULL);
    enn_vulkan_handles h = {.api_version = VK_API_VERSION_1_1, .instance = v.instance, .physical_device = v.pd,
                            .device = v.device, .queue_family = v.family, .queue = v.queue,
                            .queue_lock = queue_lock, .queue_unlock = queue_unlock, .queue_lock_user = &q};
    test_setenv("ENN_FORCE_STAGING", "1");
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create_from_vulkan(&h, NULL, &ctx));
    unsetenv("ENN_FORCE_STAGING");
    enn_vulkan_handles back = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &back));
    cr_expect(back.queue_lock == queue_lock && back.queue_unlock == queue_unlock && back.queue_lock_user == &q,
              "the handles given back lack the queue lock");

    pthread_t render;
    cr_assert_eq(pthread_create(&render, NULL, render_thread, &q), 0);
    enum { D = 3, T = 4, B = 4, C = 3, STEPS = 4 };
    enn_model_config c = test_small_classifier(D, T, B, C, 8, 4);
    enn_model *m = NULL;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    float x[B * T * D], w[64];
    uint32_t labels[B];
    for (uint32_t i = 0; i < STEPS; i++) {
        test_random_batch(40 + i, x, B * T * D, 1, labels, B, C);
        enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
        ENN_ASSERT_OK(enn_model_train_step(m, &batch, NULL));
        ENN_ASSERT_OK(enn_model_read(m, "b_z", w, 8));
    }
    atomic_store(&q.stop, 1);
    void *render_failed;
    cr_assert_eq(pthread_join(render, &render_failed), 0);
    cr_expect_null(render_failed, "the render thread's vkQueueSubmit failed");
    enn_model_destroy(m);
    enn_context_destroy(ctx);

    /* Each training step submits at least once, and each read of b_z (staged) once more. */
    cr_expect_geq(atomic_load(&q.locks), 2 * STEPS, "libenn took the queue lock %u times in %d steps",
                  atomic_load(&q.locks), STEPS);
    cr_expect_eq(atomic_load(&q.locks), atomic_load(&q.unlocks), "%u locks, %u unlocks", atomic_load(&q.locks),
                 atomic_load(&q.unlocks));
    cr_expect_not(atomic_load(&q.misuse), "the lock was taken twice, or off the training thread");
    cr_expect_gt(atomic_load(&q.render_submits), 0, "the render thread never submitted");
    cr_log_info("libenn locked the queue %u times; the render thread submitted %u times", atomic_load(&q.locks),
                atomic_load(&q.render_submits));
    cr_expect_eq(test_own_vulkan_messages(), 0, "%u message(s) while libenn ran; first: %s",
                 test_own_vulkan_messages(), test_own_vulkan_first_message());
    test_own_vulkan_destroy(&v);
    pthread_mutex_destroy(&q.mutex);
}
