/* VK_LAYER_ENN_fault_injection: a Vulkan layer, for tests only, that makes a device run
 * out of memory or get lost on cue, as a real GPU may (a model too big for the card, a
 * driver watchdog reset); lavapipe does neither on its own.
 *
 * Read from the environment when a device is created (each device counts from 1):
 *   ENN_FAULT_ALLOCATE_MEMORY=n       the n-th vkAllocateMemory and every later one
 *                                     return VK_ERROR_OUT_OF_DEVICE_MEMORY (the heap is
 *                                     full and stays full)...
 *   ENN_FAULT_ALLOCATE_MEMORY_LAST=m  ...up to the m-th only (memory freed elsewhere)
 *   ENN_FAULT_DEVICE_LOST=n           the n-th vkQueueSubmit returns VK_ERROR_DEVICE_LOST
 *                                     and is not run; from then on vkQueueSubmit,
 *                                     vkWaitForFences, vkGetFenceStatus, vkQueueWaitIdle,
 *                                     vkDeviceWaitIdle and vkGetQueryPoolResults return it
 *                                     too, as on a lost device
 *   ENN_FAULT_DEVICE_HANG=n           the n-th vkQueueSubmit runs and returns VK_SUCCESS,
 *                                     but the device is lost from then on, as when work
 *                                     hangs the GPU and a watchdog resets it: the loss
 *                                     shows at the next wait (or submission)
 *   ENN_FAULT_LOG=path                vkDestroyDevice appends "allocations A submissions S
 *                                     early_destroys E" (the device's counts, below) to the
 *                                     file: how a test counts what another process (the
 *                                     enn command) does
 * enn_fault_layer_counts() gives the calls counted so far on the newest device, so that a
 * test can learn how many allocations and submissions an operation makes.
 *
 * The layer also checks the spec's rule for a lost device, which the validation layer
 * (1.3.239) does not apply: a call that returned VK_ERROR_DEVICE_LOST counts as one that
 * succeeded for what is pending, so a submission that returned it is pending, and a fence
 * wait that returned it ends the wait. A fence destroyed while its submission is pending
 * by that rule is counted (enn_fault_layer_counts' `early_destroys`); the validation
 * layer reports every fence of the lost device's work as in use, rule or not.
 *
 * Tests put the layer under the validation layer, so that the application's calls are
 * still validated and an injected error passes up through it: the Debian loader (1.3.239)
 * stacks the layers VK_INSTANCE_LAYERS names in the order it finds their manifests, so
 * VK_LAYER_PATH names the validation layer's directory first. enn_fault_layer_lowest()
 * says whether it worked. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vk_layer.h>
#include <vulkan/vulkan.h>

#define LAYER_EXPORT __attribute__((visibility("default")))
#define MAX_OBJECTS 16

typedef struct instance_entry {
    void *key;
    VkInstance instance;
    PFN_vkGetInstanceProcAddr next_gipa;
    PFN_vkDestroyInstance destroy_instance;
} instance_entry;

typedef struct device_entry {
    void *key;
    VkDevice device;
    PFN_vkGetDeviceProcAddr next_gdpa;
    PFN_vkDestroyDevice destroy_device;
    PFN_vkAllocateMemory allocate_memory;
    PFN_vkQueueSubmit queue_submit;
    PFN_vkQueueWaitIdle queue_wait_idle;
    PFN_vkDeviceWaitIdle device_wait_idle;
    PFN_vkWaitForFences wait_for_fences;
    PFN_vkGetFenceStatus get_fence_status;
    PFN_vkGetQueryPoolResults get_query_pool_results;
    PFN_vkDestroyFence destroy_fence;
    VkFence pending[256];    /* fences of submissions not yet waited for */
    uint32_t pending_count;
    uint64_t early_destroys;
    uint64_t fail_allocation_first, fail_allocation_last; /* 0: never */
    uint64_t lose_at_submission;                          /* 0: never */
    uint64_t hang_at_submission;                          /* 0: never */
    uint64_t allocations, submissions;
    atomic_int lost;
} device_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static instance_entry instances[MAX_OBJECTS];
static device_entry devices[MAX_OBJECTS];
/* Of the newest device, kept after it goes. */
static uint64_t newest_allocations, newest_submissions, newest_early_destroys;
static int newest_lost;
static int lowest = -1; /* whether the newest instance's next layer is the loader's own */
static device_entry *newest;

/* Dispatchable handles (instance, physical device; device, queue) start with the
 * loader's dispatch table pointer, shared by an instance and its physical devices and
 * by a device and its queues: the key to find which one a call is for. */
static void *dispatch_key(const void *handle) { return *(void *const *)handle; }

static uint64_t env_count(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? strtoull(v, NULL, 10) : 0;
}

static instance_entry *find_instance(void *key)
{
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (instances[i].key == key) return &instances[i];
    return NULL;
}

static device_entry *find_device(void *key)
{
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (devices[i].key == key) return &devices[i];
    return NULL;
}

static device_entry *device_of(const void *handle)
{
    pthread_mutex_lock(&lock);
    device_entry *d = find_device(dispatch_key(handle));
    pthread_mutex_unlock(&lock);
    return d;
}

/* ------------------------------------------------------------------ instance */

static VKAPI_ATTR VkResult VKAPI_CALL fault_CreateInstance(const VkInstanceCreateInfo *info,
                                                           const VkAllocationCallbacks *alloc, VkInstance *out)
{
    VkLayerInstanceCreateInfo *link = (VkLayerInstanceCreateInfo *)info->pNext;
    while (link && !(link->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO && link->function == VK_LAYER_LINK_INFO))
        link = (VkLayerInstanceCreateInfo *)link->pNext;
    if (!link) return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetInstanceProcAddr next_gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    Dl_info below;
    int next_is_loader = dladdr((void *)next_gipa, &below) && below.dli_fname && strstr(below.dli_fname, "libvulkan");
    /* The layers below this one read the next link. */
    link->u.pLayerInfo = link->u.pLayerInfo->pNext;
    PFN_vkCreateInstance create = (PFN_vkCreateInstance)next_gipa(VK_NULL_HANDLE, "vkCreateInstance");
    if (!create) return VK_ERROR_INITIALIZATION_FAILED;
    VkResult r = create(info, alloc, out);
    if (r != VK_SUCCESS) return r;
    pthread_mutex_lock(&lock);
    instance_entry *e = find_instance(NULL);
    if (e)
        *e = (instance_entry){dispatch_key(*out), *out, next_gipa,
                              (PFN_vkDestroyInstance)next_gipa(*out, "vkDestroyInstance")};
    lowest = next_is_loader;
    pthread_mutex_unlock(&lock);
    if (!e) {
        PFN_vkDestroyInstance destroy = (PFN_vkDestroyInstance)next_gipa(*out, "vkDestroyInstance");
        if (destroy) destroy(*out, alloc);
        return VK_ERROR_TOO_MANY_OBJECTS;
    }
    return VK_SUCCESS;
}

static VKAPI_ATTR void VKAPI_CALL fault_DestroyInstance(VkInstance instance, const VkAllocationCallbacks *alloc)
{
    if (!instance) return;
    pthread_mutex_lock(&lock);
    instance_entry *e = find_instance(dispatch_key(instance));
    PFN_vkDestroyInstance destroy = e ? e->destroy_instance : NULL;
    if (e) memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&lock);
    if (destroy) destroy(instance, alloc);
}

/* ------------------------------------------------------------------ device */

static void resolve_device_functions(device_entry *d)
{
    VkDevice dev = d->device;
#define NEXT(field, name) d->field = (void *)d->next_gdpa(dev, name)
    NEXT(destroy_device, "vkDestroyDevice");
    NEXT(allocate_memory, "vkAllocateMemory");
    NEXT(queue_submit, "vkQueueSubmit");
    NEXT(queue_wait_idle, "vkQueueWaitIdle");
    NEXT(device_wait_idle, "vkDeviceWaitIdle");
    NEXT(wait_for_fences, "vkWaitForFences");
    NEXT(get_fence_status, "vkGetFenceStatus");
    NEXT(get_query_pool_results, "vkGetQueryPoolResults");
    NEXT(destroy_fence, "vkDestroyFence");
#undef NEXT
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_CreateDevice(VkPhysicalDevice pd, const VkDeviceCreateInfo *info,
                                                         const VkAllocationCallbacks *alloc, VkDevice *out)
{
    VkLayerDeviceCreateInfo *link = (VkLayerDeviceCreateInfo *)info->pNext;
    while (link && !(link->sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO && link->function == VK_LAYER_LINK_INFO))
        link = (VkLayerDeviceCreateInfo *)link->pNext;
    if (!link) return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetInstanceProcAddr next_gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    PFN_vkGetDeviceProcAddr next_gdpa = link->u.pLayerInfo->pfnNextGetDeviceProcAddr;
    link->u.pLayerInfo = link->u.pLayerInfo->pNext;
    pthread_mutex_lock(&lock);
    instance_entry *inst = find_instance(dispatch_key(pd));
    VkInstance instance = inst ? inst->instance : VK_NULL_HANDLE;
    pthread_mutex_unlock(&lock);
    PFN_vkCreateDevice create = (PFN_vkCreateDevice)next_gipa(instance, "vkCreateDevice");
    if (!create) return VK_ERROR_INITIALIZATION_FAILED;
    VkResult r = create(pd, info, alloc, out);
    if (r != VK_SUCCESS) return r;
    device_entry d = {.key = dispatch_key(*out), .device = *out, .next_gdpa = next_gdpa,
                      .fail_allocation_first = env_count("ENN_FAULT_ALLOCATE_MEMORY"),
                      .fail_allocation_last = env_count("ENN_FAULT_ALLOCATE_MEMORY_LAST"),
                      .lose_at_submission = env_count("ENN_FAULT_DEVICE_LOST"),
                      .hang_at_submission = env_count("ENN_FAULT_DEVICE_HANG")};
    if (!d.fail_allocation_last) d.fail_allocation_last = UINT64_MAX;
    resolve_device_functions(&d);
    pthread_mutex_lock(&lock);
    device_entry *e = find_device(NULL);
    if (e) {
        *e = d;
        newest = e;
        newest_allocations = newest_submissions = newest_early_destroys = 0;
        newest_lost = 0;
    }
    pthread_mutex_unlock(&lock);
    if (!e) {
        if (d.destroy_device) d.destroy_device(*out, alloc);
        return VK_ERROR_TOO_MANY_OBJECTS;
    }
    return VK_SUCCESS;
}

static VKAPI_ATTR void VKAPI_CALL fault_DestroyDevice(VkDevice device, const VkAllocationCallbacks *alloc)
{
    if (!device) return;
    pthread_mutex_lock(&lock);
    device_entry *e = find_device(dispatch_key(device));
    device_entry d = e ? *e : (device_entry){0};
    if (e == newest) newest = NULL;
    if (e) memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&lock);
    const char *log = getenv("ENN_FAULT_LOG");
    FILE *f = log && log[0] && e ? fopen(log, "a") : NULL;
    if (f) {
        fprintf(f, "allocations %llu submissions %llu early_destroys %llu\n", (unsigned long long)d.allocations,
                (unsigned long long)d.submissions, (unsigned long long)d.early_destroys);
        fclose(f);
    }
    /* Work submitted before a faked loss really runs: let it end before the driver frees
     * what it uses. */
    if (d.device_wait_idle) d.device_wait_idle(device);
    if (d.destroy_device) d.destroy_device(device, alloc);
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_AllocateMemory(VkDevice device, const VkMemoryAllocateInfo *info,
                                                           const VkAllocationCallbacks *alloc, VkDeviceMemory *out)
{
    device_entry *d = device_of(device);
    if (!d) return VK_ERROR_INITIALIZATION_FAILED;
    pthread_mutex_lock(&lock);
    uint64_t n = ++d->allocations;
    if (d == newest) newest_allocations = n;
    pthread_mutex_unlock(&lock);
    if (d->fail_allocation_first && n >= d->fail_allocation_first && n <= d->fail_allocation_last)
        return VK_ERROR_OUT_OF_DEVICE_MEMORY;
    return d->allocate_memory(device, info, alloc, out);
}

/* Pending fences, under `lock`. */
static void fence_pending(device_entry *d, VkFence fence)
{
    if (fence && d->pending_count < sizeof d->pending / sizeof *d->pending) d->pending[d->pending_count++] = fence;
}

static int fence_done(device_entry *d, VkFence fence)
{
    for (uint32_t i = 0; i < d->pending_count; i++)
        if (d->pending[i] == fence) {
            d->pending[i] = d->pending[--d->pending_count];
            return 1;
        }
    return 0;
}

/* A wait's result: VK_SUCCESS and VK_ERROR_DEVICE_LOST both end what it waited for. */
static int wait_ended(VkResult r) { return r == VK_SUCCESS || r == VK_ERROR_DEVICE_LOST; }

/* Once lost, waits end at once with VK_ERROR_DEVICE_LOST; the work the driver really
 * has (submitted before the loss) is finished first, so that nothing it uses is freed
 * under it. */
static VkResult lost(device_entry *d)
{
    d->device_wait_idle(d->device);
    return VK_ERROR_DEVICE_LOST;
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_QueueSubmit(VkQueue queue, uint32_t count, const VkSubmitInfo *submits,
                                                        VkFence fence)
{
    device_entry *d = device_of(queue);
    if (!d) return VK_ERROR_INITIALIZATION_FAILED;
    pthread_mutex_lock(&lock);
    uint64_t n = ++d->submissions;
    if (d == newest) newest_submissions = n;
    if (d->lose_at_submission && n >= d->lose_at_submission) d->lost = 1;
    int is_lost = d->lost, hangs = !is_lost && n == d->hang_at_submission;
    if (d == newest) newest_lost = is_lost || hangs;
    pthread_mutex_unlock(&lock);
    VkResult r = is_lost ? lost(d) : d->queue_submit(queue, count, submits, fence);
    if (hangs) d->lost = 1;
    if (wait_ended(r)) {
        pthread_mutex_lock(&lock);
        fence_pending(d, fence);
        pthread_mutex_unlock(&lock);
    }
    return r;
}

/* Every fence of the device: an idle wait ends all submissions. */
static VkResult all_ended(device_entry *d, VkResult r)
{
    if (wait_ended(r)) {
        pthread_mutex_lock(&lock);
        d->pending_count = 0;
        pthread_mutex_unlock(&lock);
    }
    return r;
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_QueueWaitIdle(VkQueue queue)
{
    device_entry *d = device_of(queue);
    if (!d) return VK_ERROR_INITIALIZATION_FAILED;
    return all_ended(d, d->lost ? lost(d) : d->queue_wait_idle(queue));
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_DeviceWaitIdle(VkDevice device)
{
    device_entry *d = device_of(device);
    if (!d) return VK_ERROR_INITIALIZATION_FAILED;
    return all_ended(d, d->lost ? lost(d) : d->device_wait_idle(device));
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_WaitForFences(VkDevice device, uint32_t count, const VkFence *fences,
                                                          VkBool32 all, uint64_t timeout)
{
    device_entry *d = device_of(device);
    if (!d) return VK_ERROR_INITIALIZATION_FAILED;
    VkResult r = d->lost ? lost(d) : d->wait_for_fences(device, count, fences, all, timeout);
    if (wait_ended(r) && (all || count == 1)) {
        pthread_mutex_lock(&lock);
        for (uint32_t i = 0; i < count; i++) fence_done(d, fences[i]);
        pthread_mutex_unlock(&lock);
    }
    return r;
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_GetFenceStatus(VkDevice device, VkFence fence)
{
    device_entry *d = device_of(device);
    if (!d) return VK_ERROR_INITIALIZATION_FAILED;
    VkResult r = d->lost ? lost(d) : d->get_fence_status(device, fence);
    if (wait_ended(r)) {
        pthread_mutex_lock(&lock);
        fence_done(d, fence);
        pthread_mutex_unlock(&lock);
    }
    return r;
}

static VKAPI_ATTR void VKAPI_CALL fault_DestroyFence(VkDevice device, VkFence fence, const VkAllocationCallbacks *alloc)
{
    device_entry *d = device_of(device);
    if (!d) return;
    pthread_mutex_lock(&lock);
    if (fence_done(d, fence)) {
        d->early_destroys++;
        if (d == newest) newest_early_destroys = d->early_destroys;
    }
    pthread_mutex_unlock(&lock);
    d->destroy_fence(device, fence, alloc);
}

static VKAPI_ATTR VkResult VKAPI_CALL fault_GetQueryPoolResults(VkDevice device, VkQueryPool pool, uint32_t first,
                                                                uint32_t count, size_t size, void *data,
                                                                VkDeviceSize stride, VkQueryResultFlags flags)
{
    device_entry *d = device_of(device);
    if (!d) return VK_ERROR_INITIALIZATION_FAILED;
    return d->lost ? lost(d) : d->get_query_pool_results(device, pool, first, count, size, data, stride, flags);
}

/* ------------------------------------------------------------------ lookup */

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL fault_GetDeviceProcAddr(VkDevice device, const char *name);
static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL fault_GetInstanceProcAddr(VkInstance instance, const char *name);

/* The device functions the layer intercepts, or NULL. */
static PFN_vkVoidFunction own_device_function(const char *name)
{
    static const struct {
        const char *name;
        PFN_vkVoidFunction fn;
    } table[] = {
        {"vkGetDeviceProcAddr", (PFN_vkVoidFunction)fault_GetDeviceProcAddr},
        {"vkDestroyDevice", (PFN_vkVoidFunction)fault_DestroyDevice},
        {"vkAllocateMemory", (PFN_vkVoidFunction)fault_AllocateMemory},
        {"vkQueueSubmit", (PFN_vkVoidFunction)fault_QueueSubmit},
        {"vkQueueWaitIdle", (PFN_vkVoidFunction)fault_QueueWaitIdle},
        {"vkDeviceWaitIdle", (PFN_vkVoidFunction)fault_DeviceWaitIdle},
        {"vkWaitForFences", (PFN_vkVoidFunction)fault_WaitForFences},
        {"vkGetFenceStatus", (PFN_vkVoidFunction)fault_GetFenceStatus},
        {"vkGetQueryPoolResults", (PFN_vkVoidFunction)fault_GetQueryPoolResults},
        {"vkDestroyFence", (PFN_vkVoidFunction)fault_DestroyFence},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (!strcmp(name, table[i].name)) return table[i].fn;
    return NULL;
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL fault_GetDeviceProcAddr(VkDevice device, const char *name)
{
    PFN_vkVoidFunction own = own_device_function(name);
    if (own) return own;
    device_entry *d = device ? device_of(device) : NULL;
    return d ? d->next_gdpa(device, name) : NULL;
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL fault_GetInstanceProcAddr(VkInstance instance, const char *name)
{
    if (!strcmp(name, "vkGetInstanceProcAddr")) return (PFN_vkVoidFunction)fault_GetInstanceProcAddr;
    if (!strcmp(name, "vkCreateInstance")) return (PFN_vkVoidFunction)fault_CreateInstance;
    if (!strcmp(name, "vkDestroyInstance")) return (PFN_vkVoidFunction)fault_DestroyInstance;
    if (!strcmp(name, "vkCreateDevice")) return (PFN_vkVoidFunction)fault_CreateDevice;
    PFN_vkVoidFunction own = own_device_function(name);
    if (own) return own;
    if (!instance) return NULL;
    pthread_mutex_lock(&lock);
    instance_entry *e = find_instance(dispatch_key(instance));
    PFN_vkGetInstanceProcAddr next = e ? e->next_gipa : NULL;
    pthread_mutex_unlock(&lock);
    return next ? next(instance, name) : NULL;
}

LAYER_EXPORT VKAPI_ATTR VkResult VKAPI_CALL vkNegotiateLoaderLayerInterfaceVersion(VkNegotiateLayerInterface *v)
{
    if (!v || v->sType != LAYER_NEGOTIATE_INTERFACE_STRUCT) return VK_ERROR_INITIALIZATION_FAILED;
    if (v->loaderLayerInterfaceVersion < 2) return VK_ERROR_INITIALIZATION_FAILED;
    v->loaderLayerInterfaceVersion = 2;
    v->pfnGetInstanceProcAddr = fault_GetInstanceProcAddr;
    v->pfnGetDeviceProcAddr = fault_GetDeviceProcAddr;
    v->pfnGetPhysicalDeviceProcAddr = NULL;
    return VK_SUCCESS;
}

/* For tests (found with dlsym): vkAllocateMemory and vkQueueSubmit calls made on the
 * newest device so far, and fences it destroyed while pending (also after the device
 * was destroyed). Any pointer may be NULL. */
LAYER_EXPORT void enn_fault_layer_counts(uint64_t *allocations, uint64_t *submissions, uint64_t *early_destroys)
{
    pthread_mutex_lock(&lock);
    if (allocations) *allocations = newest_allocations;
    if (submissions) *submissions = newest_submissions;
    if (early_destroys) *early_destroys = newest_early_destroys;
    pthread_mutex_unlock(&lock);
}

/* 1 once the newest device was lost (also after it was destroyed). */
LAYER_EXPORT int enn_fault_layer_lost(void)
{
    pthread_mutex_lock(&lock);
    int lost = newest_lost;
    pthread_mutex_unlock(&lock);
    return lost;
}

/* 1 when the newest instance has no layer below this one (the validation layer, when
 * on, is then above it), 0 when it has, -1 before any instance. */
LAYER_EXPORT int enn_fault_layer_lowest(void)
{
    pthread_mutex_lock(&lock);
    int l = lowest;
    pthread_mutex_unlock(&lock);
    return l;
}
