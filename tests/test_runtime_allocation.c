/* Host allocation callbacks: a context libenn creates (enn_context_options.
 * vk_allocation_callbacks) and an adopted device (enn_vulkan_handles.allocation_callbacks)
 * route the driver's host allocations for every libenn object through the caller's
 * VkAllocationCallbacks, and give every block back by the time everything is destroyed.
 *
 * Then fault injection: allocation number n through the callbacks fails, for every n of
 * a context creation (owned and adopted), and of a model creation, a training step, a
 * checkpoint save and a stream step on a context whose pipelines are built; the first
 * few allocations of each call that builds a pipeline are failed on fresh contexts
 * (ENN_TEST_EVERY_ALLOCATION=1: all of them). Whichever call that meets the failure must
 * return an error with a message (never crash, never abort, never say OK), and once what
 * was made is destroyed, nothing allocated through the callbacks is still live; the
 * context that saw the failure serves the next attempt. The validation layer is on
 * except where it cannot cope (see failures_in_context_creation and injected_options).
 * Not failed: allocations in the calls where lavapipe crashes on a failure
 * (driver_crashes_on_failure), and Mesa's device-select layer is off (injection_setup). */
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data_files.h"
#include "enn_vulkan.h"
#include "harness.h"
#include "own_vulkan.h"
#include "runtime_helpers.h"
#include "small_config.h"

/* ------------------------------------------------------------ the test allocator */

/* Counts what goes through it; the allocation (or growing reallocation) number fail_at
 * (1-based; 0: none) returns NULL, as an allocator out of memory would. The driver may
 * call from its own threads, hence the lock. */
typedef struct test_allocator {
    pthread_mutex_t lock;
    uint64_t calls;       /* allocations and reallocations asked for */
    uint64_t live;        /* blocks handed out and not yet freed */
    uint64_t live_bytes;
    struct block_header *newest; /* the live blocks, newest first */
    uint64_t fail_at;
    int failed;           /* the call fail_at came and got NULL */
    int spared;           /* the call fail_at came in a call it is not failed in, and got through */
    int spare_submits;    /* let allocations in vkQueueSubmit through (validated runs) */
    char failed_in[64];   /* the Vulkan call it came from ("": unknown) */
    const char **log;     /* if set: the call each allocation came from, by number */
    uint64_t log_capacity;
} test_allocator;

/* Sits just below each block: the malloc'ed pointer it lies in, and its size. */
typedef struct block_header {
    void *raw;
    size_t size;
    const char *call;                   /* the Vulkan call it was made in, if known */
    struct block_header *prev, *next;   /* the allocator's live blocks */
} block_header;

/* Which Vulkan call each allocation comes from: the suite links with -Wl,--wrap for the
 * Vulkan functions libenn calls that may allocate (tests/CMakeLists.txt), and each
 * wrapper names itself in current_call while it runs (allocations from the driver's own
 * threads have none). The compiler checks each wrapper against Vulkan's PFN_ type. */
static _Thread_local const char *current_call;

#define WRAP_RESULT(name, params, args)                                                         \
    VkResult __real_##name params;                                                              \
    VkResult __wrap_##name params;                                                              \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&__wrap_##name), PFN_##name), #name); \
    VkResult __wrap_##name params                                                               \
    {                                                                                           \
        const char *outer = current_call;                                                       \
        current_call = #name;                                                                   \
        VkResult r = __real_##name args;                                                        \
        current_call = outer;                                                                   \
        return r;                                                                               \
    }
#define WRAP_VOID(name, params, args)                                                           \
    void __real_##name params;                                                                  \
    void __wrap_##name params;                                                                  \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&__wrap_##name), PFN_##name), #name); \
    void __wrap_##name params                                                                   \
    {                                                                                           \
        const char *outer = current_call;                                                       \
        current_call = #name;                                                                   \
        __real_##name args;                                                                     \
        current_call = outer;                                                                   \
    }

WRAP_RESULT(vkCreateInstance, (const VkInstanceCreateInfo *ci, const VkAllocationCallbacks *a, VkInstance *o),
            (ci, a, o))
WRAP_RESULT(vkEnumeratePhysicalDevices, (VkInstance i, uint32_t *n, VkPhysicalDevice *d), (i, n, d))
WRAP_RESULT(vkEnumerateDeviceExtensionProperties,
            (VkPhysicalDevice d, const char *layer, uint32_t *n, VkExtensionProperties *p), (d, layer, n, p))
WRAP_RESULT(vkCreateDevice,
            (VkPhysicalDevice pd, const VkDeviceCreateInfo *ci, const VkAllocationCallbacks *a, VkDevice *o),
            (pd, ci, a, o))
WRAP_RESULT(vkCreateBuffer, (VkDevice d, const VkBufferCreateInfo *ci, const VkAllocationCallbacks *a, VkBuffer *o),
            (d, ci, a, o))
WRAP_RESULT(vkCreateBufferView,
            (VkDevice d, const VkBufferViewCreateInfo *ci, const VkAllocationCallbacks *a, VkBufferView *o),
            (d, ci, a, o))
WRAP_RESULT(vkAllocateMemory,
            (VkDevice d, const VkMemoryAllocateInfo *ci, const VkAllocationCallbacks *a, VkDeviceMemory *o),
            (d, ci, a, o))
WRAP_RESULT(vkMapMemory, (VkDevice d, VkDeviceMemory m, VkDeviceSize o, VkDeviceSize n, VkMemoryMapFlags f, void **p),
            (d, m, o, n, f, p))
WRAP_RESULT(vkCreateCommandPool,
            (VkDevice d, const VkCommandPoolCreateInfo *ci, const VkAllocationCallbacks *a, VkCommandPool *o),
            (d, ci, a, o))
WRAP_RESULT(vkAllocateCommandBuffers, (VkDevice d, const VkCommandBufferAllocateInfo *ai, VkCommandBuffer *o),
            (d, ai, o))
WRAP_RESULT(vkCreateFence, (VkDevice d, const VkFenceCreateInfo *ci, const VkAllocationCallbacks *a, VkFence *o),
            (d, ci, a, o))
WRAP_RESULT(vkCreateDescriptorPool,
            (VkDevice d, const VkDescriptorPoolCreateInfo *ci, const VkAllocationCallbacks *a, VkDescriptorPool *o),
            (d, ci, a, o))
WRAP_RESULT(vkAllocateDescriptorSets, (VkDevice d, const VkDescriptorSetAllocateInfo *ai, VkDescriptorSet *o),
            (d, ai, o))
WRAP_RESULT(vkCreateQueryPool,
            (VkDevice d, const VkQueryPoolCreateInfo *ci, const VkAllocationCallbacks *a, VkQueryPool *o),
            (d, ci, a, o))
WRAP_RESULT(vkCreatePipelineCache,
            (VkDevice d, const VkPipelineCacheCreateInfo *ci, const VkAllocationCallbacks *a, VkPipelineCache *o),
            (d, ci, a, o))
WRAP_RESULT(vkCreateDescriptorSetLayout,
            (VkDevice d, const VkDescriptorSetLayoutCreateInfo *ci, const VkAllocationCallbacks *a,
             VkDescriptorSetLayout *o),
            (d, ci, a, o))
WRAP_RESULT(vkCreatePipelineLayout,
            (VkDevice d, const VkPipelineLayoutCreateInfo *ci, const VkAllocationCallbacks *a, VkPipelineLayout *o),
            (d, ci, a, o))
WRAP_RESULT(vkCreateShaderModule,
            (VkDevice d, const VkShaderModuleCreateInfo *ci, const VkAllocationCallbacks *a, VkShaderModule *o),
            (d, ci, a, o))
WRAP_RESULT(vkCreateComputePipelines,
            (VkDevice d, VkPipelineCache c, uint32_t n, const VkComputePipelineCreateInfo *ci,
             const VkAllocationCallbacks *a, VkPipeline *o),
            (d, c, n, ci, a, o))
WRAP_RESULT(vkBeginCommandBuffer, (VkCommandBuffer c, const VkCommandBufferBeginInfo *bi), (c, bi))
WRAP_RESULT(vkEndCommandBuffer, (VkCommandBuffer c), (c))
WRAP_RESULT(vkQueueSubmit, (VkQueue q, uint32_t n, const VkSubmitInfo *si, VkFence f), (q, n, si, f))
WRAP_RESULT(vkResetCommandPool, (VkDevice d, VkCommandPool p, VkCommandPoolResetFlags f), (d, p, f))
WRAP_RESULT(vkResetCommandBuffer, (VkCommandBuffer c, VkCommandBufferResetFlags f), (c, f))
WRAP_RESULT(vkResetDescriptorPool, (VkDevice d, VkDescriptorPool p, VkDescriptorPoolResetFlags f), (d, p, f))
WRAP_VOID(vkUpdateDescriptorSets,
          (VkDevice d, uint32_t n, const VkWriteDescriptorSet *w, uint32_t nc, const VkCopyDescriptorSet *c),
          (d, n, w, nc, c))
WRAP_VOID(vkCmdBindDescriptorSets,
          (VkCommandBuffer c, VkPipelineBindPoint bp, VkPipelineLayout l, uint32_t first, uint32_t n,
           const VkDescriptorSet *sets, uint32_t nd, const uint32_t *dyn),
          (c, bp, l, first, n, sets, nd, dyn))
WRAP_VOID(vkCmdBindPipeline, (VkCommandBuffer c, VkPipelineBindPoint bp, VkPipeline p), (c, bp, p))
WRAP_VOID(vkCmdCopyBuffer, (VkCommandBuffer c, VkBuffer src, VkBuffer dst, uint32_t n, const VkBufferCopy *r),
          (c, src, dst, n, r))
WRAP_VOID(vkCmdDispatch, (VkCommandBuffer c, uint32_t x, uint32_t y, uint32_t z), (c, x, y, z))
WRAP_VOID(vkCmdFillBuffer, (VkCommandBuffer c, VkBuffer b, VkDeviceSize o, VkDeviceSize n, uint32_t v),
          (c, b, o, n, v))
WRAP_VOID(vkCmdPipelineBarrier,
          (VkCommandBuffer c, VkPipelineStageFlags src, VkPipelineStageFlags dst, VkDependencyFlags f, uint32_t nm,
           const VkMemoryBarrier *m, uint32_t nb, const VkBufferMemoryBarrier *b, uint32_t ni,
           const VkImageMemoryBarrier *im),
          (c, src, dst, f, nm, m, nb, b, ni, im))
WRAP_VOID(vkCmdPushConstants,
          (VkCommandBuffer c, VkPipelineLayout l, VkShaderStageFlags st, uint32_t o, uint32_t n, const void *v),
          (c, l, st, o, n, v))
WRAP_VOID(vkCmdResetQueryPool, (VkCommandBuffer c, VkQueryPool p, uint32_t first, uint32_t n), (c, p, first, n))
WRAP_VOID(vkCmdWriteTimestamp, (VkCommandBuffer c, VkPipelineStageFlagBits st, VkQueryPool p, uint32_t q),
          (c, st, p, q))

/* vkCmdPushDescriptorSetKHR comes from vkGetDeviceProcAddr: it is handed out wrapped. */
static PFN_vkCmdPushDescriptorSetKHR real_push_descriptor_set;

static void push_descriptor_set(VkCommandBuffer c, VkPipelineBindPoint bp, VkPipelineLayout l, uint32_t set,
                                uint32_t n, const VkWriteDescriptorSet *w)
{
    const char *outer = current_call;
    current_call = "vkCmdPushDescriptorSetKHR";
    real_push_descriptor_set(c, bp, l, set, n, w);
    current_call = outer;
}

PFN_vkVoidFunction __real_vkGetDeviceProcAddr(VkDevice device, const char *name);
PFN_vkVoidFunction __wrap_vkGetDeviceProcAddr(VkDevice device, const char *name);
PFN_vkVoidFunction __wrap_vkGetDeviceProcAddr(VkDevice device, const char *name)
{
    PFN_vkVoidFunction f = __real_vkGetDeviceProcAddr(device, name);
    if (!f || strcmp(name, "vkCmdPushDescriptorSetKHR")) return f;
    real_push_descriptor_set = (PFN_vkCmdPushDescriptorSetKHR)f;
    return (PFN_vkVoidFunction)push_descriptor_set;
}

/* Calls in which lavapipe of Mesa 22.3 (Debian 12) crashes when an allocation fails: it
 * uses the NULL it got. Every vkCmd* records its command into a list whose entries are
 * allocated unchecked (Vulkan would have the failure reported by vkEndCommandBuffer);
 * vkCreatePipelineLayout. libenn can do nothing about these, so the test never fails an
 * allocation made inside them. */
static int driver_crashes_on_failure(const char *call)
{
    return call && (!strncmp(call, "vkCmd", 5) || !strcmp(call, "vkCreatePipelineLayout"));
}

static void *block_new(test_allocator *a, size_t size, size_t alignment)
{
    pthread_mutex_lock(&a->lock);
    uint64_t call = ++a->calls;
    int spare = call == a->fail_at && (driver_crashes_on_failure(current_call) ||
                                       (a->spare_submits && current_call && !strcmp(current_call, "vkQueueSubmit")));
    int fail = call == a->fail_at && !spare;
    if (fail) {
        a->failed = 1;
        snprintf(a->failed_in, sizeof a->failed_in, "%s", current_call ? current_call : "");
    }
    if (spare) a->spared = 1;
    if (a->log && call <= a->log_capacity) a->log[call - 1] = current_call;
    pthread_mutex_unlock(&a->lock);
    const char *trace = getenv("ENN_TEST_ALLOCATION_TRACE");
    if (fail && trace && trace[0] == '2') {
        void *frames[32];
        fprintf(stderr, "allocation %llu fails here:\n", (unsigned long long)call);
        backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    }
    if (fail) return NULL;
    if (alignment < _Alignof(block_header)) alignment = _Alignof(block_header);
    char *raw = malloc(size + alignment + sizeof(block_header));
    if (!raw) return NULL;
    uintptr_t at = ((uintptr_t)(raw + sizeof(block_header)) + alignment - 1) & ~(uintptr_t)(alignment - 1);
    block_header *h = (block_header *)at - 1;
    h->raw = raw;
    h->size = size;
    h->call = current_call;
    pthread_mutex_lock(&a->lock);
    h->prev = NULL;
    h->next = a->newest;
    if (a->newest) a->newest->prev = h;
    a->newest = h;
    a->live++;
    a->live_bytes += size;
    pthread_mutex_unlock(&a->lock);
    return (void *)at;
}

static void block_free(test_allocator *a, void *p)
{
    if (!p) return;
    block_header *h = (block_header *)p - 1;
    pthread_mutex_lock(&a->lock);
    if (h->prev) h->prev->next = h->next;
    else a->newest = h->next;
    if (h->next) h->next->prev = h->prev;
    a->live--;
    a->live_bytes -= h->size;
    pthread_mutex_unlock(&a->lock);
    free(h->raw);
}

static VKAPI_ATTR void *VKAPI_CALL on_allocation(void *user, size_t size, size_t alignment,
                                                 VkSystemAllocationScope scope)
{
    (void)scope;
    return block_new(user, size, alignment);
}

/* Vulkan's rules: NULL original allocates; size 0 frees; on failure the original
 * stays as it was. */
static VKAPI_ATTR void *VKAPI_CALL on_reallocation(void *user, void *original, size_t size, size_t alignment,
                                                   VkSystemAllocationScope scope)
{
    (void)scope;
    if (!size) {
        block_free(user, original);
        return NULL;
    }
    void *p = block_new(user, size, alignment);
    if (p && original) {
        size_t old = ((block_header *)original - 1)->size;
        memcpy(p, original, old < size ? old : size);
        block_free(user, original);
    }
    return p;
}

static VKAPI_ATTR void VKAPI_CALL on_free(void *user, void *p) { block_free(user, p); }

static void on_crash(int sig)
{
    void *frames[48];
    fprintf(stderr, "signal %d:\n", sig);
    backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void allocator_init(test_allocator *a, VkAllocationCallbacks *cb)
{
    if (getenv("ENN_TEST_ALLOCATION_TRACE")) {
        signal(SIGSEGV, on_crash);
        signal(SIGABRT, on_crash);
    }
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    *cb = (VkAllocationCallbacks){.pUserData = a, .pfnAllocation = on_allocation,
                                  .pfnReallocation = on_reallocation, .pfnFree = on_free};
}

/* The Vulkan call that made the newest live block ("?" if unknown). */
static const char *newest_live_call(test_allocator *a)
{
    pthread_mutex_lock(&a->lock);
    const char *call = a->newest ? a->newest->call : NULL;
    pthread_mutex_unlock(&a->lock);
    return call ? call : "?";
}

static uint64_t allocator_calls(test_allocator *a)
{
    pthread_mutex_lock(&a->lock);
    uint64_t n = a->calls;
    pthread_mutex_unlock(&a->lock);
    return n;
}

static void allocator_arm(test_allocator *a, uint64_t fail_at)
{
    pthread_mutex_lock(&a->lock);
    a->calls = 0;
    a->failed = a->spared = 0;
    a->fail_at = fail_at;
    pthread_mutex_unlock(&a->lock);
}

static void expect_nothing_live(test_allocator *a, const char *when)
{
    pthread_mutex_lock(&a->lock);
    uint64_t live = a->live, bytes = a->live_bytes;
    pthread_mutex_unlock(&a->lock);
    cr_expect_eq(live, 0, "%s: %llu block(s), %llu bytes, allocated through the callbacks are still live (the "
                 "newest made in %s)", when, (unsigned long long)live, (unsigned long long)bytes, newest_live_call(a));
}

/* ------------------------------------------------------------ the workload */

/* Validation messages of the contexts libenn creates in the injection tests. */
static unsigned validation_messages;
static char first_message[2048];

static void count_message(void *user, const char *message)
{
    (void)user;
    /* The layer reports each call that returns the injected failure: expected here. */
    if (!strcmp(message, "VK_ERROR_OUT_OF_HOST_MEMORY")) return;
    fprintf(stderr, "[validation] %s\n", message);
    if (__atomic_fetch_add(&validation_messages, 1, __ATOMIC_SEQ_CST) == 0)
        snprintf(first_message, sizeof first_message, "%s", message);
}

enum { B = 2, T = 3, D = 3, H = 8, N = 4, C = 3 };

static enn_model_config workload_config(void)
{
    enn_model_config c = test_small_classifier(D, T, B, C, H, N);
    c.seed = 11;
    return c;
}

static enn_status train_one_step(enn_model *m)
{
    float x[B * T * D];
    uint32_t labels[B];
    test_random_batch(5, x, B * T * D, 1, labels, B, C);
    enn_batch batch = {.size = B, .seq_len = T, .x = x, .labels = labels};
    return enn_model_train_step(m, &batch, NULL);
}

/* A model, one training step and a checkpoint on ctx; everything made is destroyed. */
static void train_and_save(enn_context *ctx)
{
    enn_model_config c = workload_config();
    enn_model *m = NULL;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    ENN_ASSERT_OK(train_one_step(m));
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    ENN_ASSERT_OK(enn_model_save(m, test_path(path, dir, "model.safetensors")));
    test_tmpdir_remove(dir);
    enn_model_destroy(m);
}

/* ------------------------------------------------------------ counting */

Test(runtime_allocation, owned_context_allocates_through_the_callbacks)
{
    test_allocator a;
    VkAllocationCallbacks cb;
    allocator_init(&a, &cb);
    enn_context_options opt = {.vk_allocation_callbacks = &cb};
    enn_context *ctx = test_context_with(&opt);   /* validation on */
    uint64_t after_create = allocator_calls(&a);
    cr_expect_gt(after_create, 0, "creating the instance and device allocated nothing through the callbacks");
    train_and_save(ctx);
    cr_expect_gt(allocator_calls(&a), after_create,
                 "the model, its training step and its checkpoint allocated nothing through the callbacks");
    cr_log_info("owned context: %llu allocations through the callbacks", (unsigned long long)allocator_calls(&a));
    test_context_finish(ctx);
    expect_nothing_live(&a, "after enn_context_destroy");
}

/* An engine's device made with callbacks `engine`, and the handles that adopt it with a
 * second set, `given` (the same functions, counting apart), for libenn's objects. */
static void engine_device(test_allocator *engine, VkAllocationCallbacks *engine_cb, test_allocator *given,
                          VkAllocationCallbacks *given_cb, test_own_vulkan *v, enn_vulkan_handles *h)
{
    allocator_init(engine, engine_cb);
    allocator_init(given, given_cb);
    test_own_vulkan_create(v, "allocation-test", 0, engine_cb);
    *h = (enn_vulkan_handles){.api_version = VK_API_VERSION_1_1, .instance = v->instance, .physical_device = v->pd,
                              .device = v->device, .queue_family = v->family, .queue = v->queue,
                              .allocation_callbacks = given_cb};
}

/* The engine's device has callbacks of its own; libenn is given a second set (with the
 * same functions, counting apart), so that the test sees libenn's objects use what it was
 * given: a driver falls back to the device's callbacks when pAllocator is NULL. */
Test(runtime_allocation, adopted_device_allocates_through_the_callbacks)
{
    test_allocator engine, given;
    VkAllocationCallbacks engine_cb, given_cb;
    test_own_vulkan v;
    enn_vulkan_handles h;
    engine_device(&engine, &engine_cb, &given, &given_cb, &v, &h);
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create_from_vulkan(&h, NULL, &ctx));
    enn_vulkan_handles back = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &back));
    cr_expect_eq(back.allocation_callbacks, &given_cb);
    cr_expect_gt(allocator_calls(&given), 0, "creating the context allocated nothing through the callbacks");
    uint64_t after_create = allocator_calls(&given);
    train_and_save(ctx);
    cr_expect_gt(allocator_calls(&given), after_create,
                 "the model, its training step and its checkpoint allocated nothing through the callbacks");
    cr_log_info("adopted device: %llu allocations through libenn's callbacks",
                (unsigned long long)allocator_calls(&given));
    enn_context_destroy(ctx);
    expect_nothing_live(&given, "after enn_context_destroy");
    test_own_vulkan_destroy(&v);
    cr_expect_eq(test_own_vulkan_messages(), 0, "%u validation message(s); first: %s", test_own_vulkan_messages(),
                 test_own_vulkan_first_message());
    expect_nothing_live(&engine, "after destroying the device and the instance");
}

/* ------------------------------------------------------------ fault injection */

/* One Vulkan call can absorb a failure without libenn ever seeing it: vkCreateInstance,
 * where the loader reads every layer and driver manifest and skips one it cannot read.
 * Anywhere else a failed allocation must come back to libenn's caller as an error. */
static int absorbed_below_libenn(const char *call) { return call && !strcmp(call, "vkCreateInstance"); }

/* Checks what `call` (which began at allocation `before`) did with allocation n failing
 * (or, if none failed, that it succeeded); returns 1 when the failure was absorbed. */
static unsigned failures_made;   /* attempts in which an allocation did fail */

static int check_outcome(test_allocator *a, uint64_t n, const char *call, enn_status s, uint64_t before)
{
    const char *in = a->failed_in[0] ? a->failed_in : "an unknown call";
    failures_made += a->failed;
    if (a->spared || !a->failed) {
        cr_expect_eq(s, ENN_OK, "no allocation failed (fail at %llu), yet %s returned %s: %s", (unsigned long long)n,
                     call, enn_status_name(s), enn_last_error());
        return 0;
    }
    if (s == ENN_OK) {
        int absorbed = absorbed_below_libenn(a->failed_in);
        cr_expect(absorbed, "allocation %llu failed (in %s), yet %s returned ENN_OK", (unsigned long long)n, in, call);
        return absorbed;
    }
    cr_expect_gt(n, before, "allocation %llu failed, but %s (which began at allocation %llu) reported it",
                 (unsigned long long)n, call, (unsigned long long)before);
    cr_expect(enn_last_error()[0], "allocation %llu failed (in %s): %s returned %s with an empty enn_last_error()",
              (unsigned long long)n, in, call, enn_status_name(s));
    return 0;
}

/* Live blocks, but for submission records: lavapipe's queue thread frees the one it
 * made in vkQueueSubmit some time after the fence libenn waits for has signalled, so
 * such a block may still be there when a model has just been destroyed. (They are all
 * gone once the device is: vkDestroyDevice joins that thread, and the tests check that.) */
static uint64_t allocator_live(test_allocator *a)
{
    pthread_mutex_lock(&a->lock);
    uint64_t n = 0;
    for (const block_header *h = a->newest; h; h = h->next) n += !(h->call && !strcmp(h->call, "vkQueueSubmit"));
    pthread_mutex_unlock(&a->lock);
    return n;
}

static void trace_outcome(test_allocator *a, uint64_t n, const char *call, enn_status s)
{
    if (getenv("ENN_TEST_ALLOCATION_TRACE"))
        fprintf(stderr, "table %llu %s %s %s\n", (unsigned long long)n,
                a->failed ? (a->failed_in[0] ? a->failed_in : "?") : a->spared ? "spared" : "-",
                s == ENN_OK ? "-" : call, enn_status_name(s));
}

/* The options every injected context gets: the test device, the disk cache off (every
 * run makes the same calls) and the validation layer on. The layer allocates through
 * the callbacks too (a few dozen of its allocations in a run) and copes with them
 * failing: it returns the error, as the driver does. */
static enn_context_options injected_options(const VkAllocationCallbacks *cb)
{
    return (enn_context_options){.device = test_device(), .validation = 1, .cache_dir = "",
                                 .vk_allocation_callbacks = cb, .validation_callback = count_message};
}

/* But the layer (Debian 12's 1.3.239) takes a submission as made before the driver has
 * said so, and a failed vkQueueSubmit leaves its fence and command buffer "in use" for
 * ever: destroying them is then reported (VUID-vkDestroyFence-fence-01120 and others),
 * though Vulkan says a failed submission changes nothing (KhronosGroup/
 * Vulkan-ValidationLayers#1653). So with the layer on, allocations in vkQueueSubmit are
 * let through, and failed_submissions fails them with the layer off. */

/* Mesa's device-select layer (an implicit layer) absorbs a failed allocation in
 * vkEnumeratePhysicalDevices and the process crashes later, in the driver: its trouble,
 * not libenn's, so it is left out. */
static void injection_setup(test_allocator *a, VkAllocationCallbacks *cb)
{
    test_setenv("NODEVICE_SELECT", "1");
    allocator_init(a, cb);
    a->spare_submits = 1;
}

/* ENN_TEST_ALLOCATION_FAIL_AT=n or =first-last: only those (ENN_TEST_ALLOCATION_TRACE=1
 * prints each outcome, =2 also where each failure happens). */
static int only_range(uint64_t *first, uint64_t *last)
{
    const char *only = getenv("ENN_TEST_ALLOCATION_FAIL_AT");
    if (!only || !only[0]) return 0;
    char *end;
    *first = *last = strtoull(only, &end, 10);
    if (*end == '-') *last = strtoull(end + 1, NULL, 10);
    return 1;
}

static int every_allocation(void)
{
    const char *every = getenv("ENN_TEST_EVERY_ALLOCATION");
    return every && every[0] == '1';
}

/* Context creation, a fresh context each time, every allocation in turn: the loader's
 * in vkCreateInstance (over 1600 on Debian 12, a few milliseconds each), the device, the
 * memory manager, transfers, the pipeline cache. */
Test(runtime_allocation, failures_in_context_creation, .timeout = 600)
{
    test_allocator a;
    VkAllocationCallbacks cb;
    injection_setup(&a, &cb);
    /* Without the layer: with it, a failed allocation in vkEnumeratePhysicalDevices (in the
     * loader, below the layer) makes the layer throw a C++ exception (std::logic_error,
     * "basic_string: construction from null"), which ends the process. */
    enn_context_options opt = injected_options(&cb);
    opt.validation = 0;
    a.spare_submits = 0;
    const char *log[4096] = {0};
    a.log = log;
    a.log_capacity = 4096;
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    uint64_t total = allocator_calls(&a);
    enn_context_destroy(ctx);
    a.log = NULL;
    cr_assert_leq(total, 4096, "context creation made %llu allocations", (unsigned long long)total);
    expect_nothing_live(&a, "a context created and destroyed");
    uint64_t first = 1, last = total + 1, absorbed = 0, tried = 0;   /* the last: past the end */
    only_range(&first, &last);
    for (uint64_t n = first; n <= last; n++) {
        allocator_arm(&a, n);
        ctx = NULL;
        enn_status s = enn_context_create(&opt, &ctx);
        trace_outcome(&a, n, "enn_context_create", s);
        absorbed += check_outcome(&a, n, "enn_context_create", s, 0);
        cr_expect(s == ENN_OK || !ctx, "enn_context_create failed but left *out set");
        enn_context_destroy(ctx);
        allocator_arm(&a, 0);
        char when[96];
        snprintf(when, sizeof when, "allocation %llu failed in context creation", (unsigned long long)n);
        expect_nothing_live(&a, when);
        tried++;
    }
    cr_log_info("context creation: %llu allocations, %llu failed in turn, %llu absorbed by the loader",
                (unsigned long long)total, (unsigned long long)tried, (unsigned long long)absorbed);
    cr_expect_gt(failures_made, 0, "no allocation was ever failed: the harness does nothing");
}

/* Creating a model, a training step, a checkpoint and a stream step on one context
 * whose pipelines were all built by an earlier run (so that each attempt is quick), every allocation in
 * turn. After each failure the model is destroyed and nothing it allocated is left; the
 * same context serves the next attempt, so it must also still work after a failure. */
static enn_status model_stage(test_allocator *a, uint64_t n, enn_context *ctx, const char *checkpoint)
{
    enn_model_config c = workload_config();
    enn_model *m = NULL;
    uint64_t before = allocator_calls(a);
    enn_status s = enn_model_create(ctx, &c, &m);
    const char *call = "enn_model_create";
    if (s == ENN_OK) {
        before = allocator_calls(a);
        s = train_one_step(m);
        call = "enn_model_train_step";
    }
    if (s == ENN_OK) {
        before = allocator_calls(a);
        s = enn_model_save(m, checkpoint);
        call = "enn_model_save";
    }
    enn_stream *st = NULL;
    if (s == ENN_OK) {
        before = allocator_calls(a);
        s = enn_stream_create(m, 1, &st);
        call = "enn_stream_create";
    }
    if (s == ENN_OK) {
        const float x[D] = {0.5f, -0.25f, 1.0f};
        float out[C];
        before = allocator_calls(a);
        s = enn_stream_step(st, x, out);
        call = "enn_stream_step";
    }
    enn_stream_destroy(st);
    trace_outcome(a, n, call, s);
    check_outcome(a, n, call, s, before);
    enn_model_destroy(m);
    return s;
}

/* only_submits: the layer off, and only the allocations made in vkQueueSubmit failed. */
static void failures_in_models(int push_descriptors, int only_submits)
{
    if (!push_descriptors) test_setenv("ENN_DISABLE_PUSH_DESCRIPTORS", "1");
    test_allocator a;
    VkAllocationCallbacks cb;
    injection_setup(&a, &cb);
    enn_context_options opt = injected_options(&cb);
    if (only_submits) {
        opt.validation = 0;
        a.spare_submits = 0;
    }
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(path, dir, "model.safetensors");
    ENN_ASSERT_OK(model_stage(&a, 0, ctx, path));   /* builds the pipelines */
    uint64_t live = allocator_live(&a);
    static const char *log[1 << 16];
    a.log = log;
    a.log_capacity = 1 << 16;
    allocator_arm(&a, 0);
    ENN_ASSERT_OK(model_stage(&a, 0, ctx, path));
    a.log = NULL;
    uint64_t total = allocator_calls(&a), tried = 0;
    cr_assert_leq(total, a.log_capacity);
    cr_expect_eq(allocator_live(&a), live, "a model's run left allocations live");
    uint64_t first = 1, last = total + 1;   /* the last one: past the end, nothing fails */
    only_range(&first, &last);
    for (uint64_t n = first; n <= last; n++) {
        if (only_submits && n <= total && !(log[n - 1] && !strcmp(log[n - 1], "vkQueueSubmit"))) continue;
        allocator_arm(&a, n);
        model_stage(&a, n, ctx, path);
        allocator_arm(&a, 0);
        uint64_t now = allocator_live(&a);
        cr_expect_eq(now, live, "allocation %llu failed (in %s): %lld allocation(s) more are live once the model is "
                     "destroyed (the newest made in %s)", (unsigned long long)n,
                     a.failed_in[0] ? a.failed_in : "an unknown call", (long long)(now - live), newest_live_call(&a));
        live = now;
        tried++;
    }
    cr_log_info("a model, a training step, a checkpoint and a stream step on a warm context: %llu allocations, "
                "%llu failed in turn", (unsigned long long)total, (unsigned long long)tried);
    if (only_submits) cr_expect_gt(tried, 1, "no allocation came from vkQueueSubmit");
    cr_expect_gt(failures_made, 0, "no allocation was ever failed: the harness does nothing");
    enn_context_destroy(ctx);
    test_tmpdir_remove(dir);
    expect_nothing_live(&a, "after enn_context_destroy");
    cr_expect_eq(validation_messages, 0, "%u validation message(s); first: %s", validation_messages, first_message);
}

Test(runtime_allocation, failures_in_models, .timeout = 600) { failures_in_models(1, 0); }
/* Descriptor sets from pools instead of push descriptors: the recorder's other path. */
Test(runtime_allocation, failures_in_models_without_push_descriptors, .timeout = 600) { failures_in_models(0, 0); }
Test(runtime_allocation, failed_submissions, .timeout = 600) { failures_in_models(1, 1); }

/* Building pipelines (a fresh context each time, so nothing is built yet): the first
 * allocations of each Vulkan call that builds one, failed in turn. */
Test(runtime_allocation, failures_in_pipeline_creation, .timeout = 600)
{
    test_allocator a;
    VkAllocationCallbacks cb;
    injection_setup(&a, &cb);
    enn_context_options opt = injected_options(&cb);
    static const char *log[1 << 16];
    a.log = log;
    a.log_capacity = 1 << 16;
    char dir[TEST_PATH_MAX], path[TEST_PATH_MAX];
    test_tmpdir(dir);
    test_path(path, dir, "model.safetensors");
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    uint64_t begin = allocator_calls(&a);
    ENN_ASSERT_OK(model_stage(&a, 0, ctx, path));
    uint64_t end = allocator_calls(&a);
    enn_context_destroy(ctx);
    a.log = NULL;
    cr_assert_leq(end, a.log_capacity);
    static const char *const builders[] = {"vkCreateDescriptorSetLayout", "vkCreateShaderModule",
                                           "vkCreateComputePipelines", "vkCreatePipelineCache"};
    unsigned seen[4] = {0}, tried = 0;
    for (uint64_t n = begin + 1; n <= end; n++) {
        size_t k = 0;
        while (k < 4 && !(log[n - 1] && !strcmp(log[n - 1], builders[k]))) k++;
        if (k == 4 || (!every_allocation() && seen[k]++ >= 3)) continue;
        allocator_arm(&a, n);
        ctx = NULL;
        ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
        model_stage(&a, n, ctx, path);
        enn_context_destroy(ctx);
        allocator_arm(&a, 0);
        char when[96];
        snprintf(when, sizeof when, "allocation %llu failed (in %s)", (unsigned long long)n, log[n - 1]);
        expect_nothing_live(&a, when);
        tried++;
    }
    cr_expect_gt(tried, 0, "no allocation came from a call that builds a pipeline");
    cr_expect_gt(failures_made, 0, "no allocation was ever failed: the harness does nothing");
    test_tmpdir_remove(dir);
    cr_expect_eq(validation_messages, 0, "%u validation message(s); first: %s", validation_messages, first_message);
}

/* Adopting a device, every allocation through libenn's callbacks in turn (the engine's
 * device, instance and messenger use callbacks of their own, never failed): after each
 * failure the context is gone, nothing libenn allocated is live, and the engine's device
 * still works and was left clean (its layer reports objects left on it at
 * vkDestroyDevice). */
Test(runtime_allocation, failures_in_adoption, .timeout = 600)
{
    test_setenv("NODEVICE_SELECT", "1");
    test_allocator engine, given;
    VkAllocationCallbacks engine_cb, given_cb;
    test_own_vulkan v;
    enn_vulkan_handles h;
    engine_device(&engine, &engine_cb, &given, &given_cb, &v, &h);
    enn_context_options opt = {.cache_dir = ""};
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create_from_vulkan(&h, &opt, &ctx));
    uint64_t total = allocator_calls(&given);
    enn_context_destroy(ctx);
    uint64_t first = 1, last = total + 1;
    only_range(&first, &last);
    for (uint64_t n = first; n <= last; n++) {
        allocator_arm(&given, n);
        ctx = NULL;
        enn_status s = enn_context_create_from_vulkan(&h, &opt, &ctx);
        trace_outcome(&given, n, "enn_context_create_from_vulkan", s);
        check_outcome(&given, n, "enn_context_create_from_vulkan", s, 0);
        enn_context_destroy(ctx);
        allocator_arm(&given, 0);
        char when[96];
        snprintf(when, sizeof when, "allocation %llu failed in adoption", (unsigned long long)n);
        expect_nothing_live(&given, when);
    }
    cr_log_info("adoption: %llu allocations through libenn's callbacks, each failed in turn",
                (unsigned long long)total);
    cr_expect_gt(failures_made, 0, "no allocation was ever failed: the harness does nothing");
    test_own_vulkan_destroy(&v);
    cr_expect_eq(test_own_vulkan_messages(), 0, "%u validation message(s); first: %s", test_own_vulkan_messages(),
                 test_own_vulkan_first_message());
    expect_nothing_live(&engine, "after destroying the device and the instance");
}
