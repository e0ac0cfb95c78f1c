/* Context creation and its switches: device listing and choice (by index, by name, by
 * ENN_DEVICE), validation by option or ENN_VALIDATION, the per-submit cap by option or
 * ENN_MAX_DISPATCHES_PER_SUBMIT (with out-of-range values refused), capabilities
 * that are consistent with themselves, and the struct_size of options and capabilities
 * (enn.h, "structs that grow"), with the helper checked against a libenn struct larger
 * than its caller's. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/struct_size.h"
#include "enn_vulkan.h"
#include "harness.h"
#include "runtime_helpers.h"

/* The index of the test device in enn_list_devices, or -1. */
static int test_device_index(void)
{
    enn_device_info infos[16];
    uint32_t count = 0;
    ENN_ASSERT_OK(enn_list_devices(infos, 16, &count));
    for (uint32_t i = 0; i < count && i < 16; i++)
        if (test_name_matches(infos[i].name, test_device())) return (int)i;
    return -1;
}

Test(runtime_context, list_devices)
{
    cr_expect_neq(enn_version()[0], '\0');
    uint32_t count = 0;
    ENN_ASSERT_OK(enn_list_devices(NULL, 0, &count));
    cr_assert_geq(count, 1, "no device listed");
    enn_device_info infos[16];
    memset(infos, 0xAB, sizeof infos);
    uint32_t count1 = 0;
    ENN_ASSERT_OK(enn_list_devices(infos, 1, &count1));
    cr_expect_eq(count1, count, "capacity 1 changed the count");
    cr_expect_eq(infos[1].index, 0xABABABABu, "capacity 1 wrote a second entry");
    ENN_ASSERT_OK(enn_list_devices(infos, 16, &count));
    uint32_t chosen = 0;
    for (uint32_t i = 0; i < count && i < 16; i++) {
        cr_expect_eq(infos[i].index, i);
        cr_expect_neq(infos[i].name[0], '\0', "device %u has no name", i);
        chosen += infos[i].chosen != 0;
    }
    cr_expect_eq(chosen, 1, "%u devices marked chosen", chosen);
    int index = test_device_index();
    cr_assert_geq(index, 0, "the test device %s is not listed", test_device());

    /* The listed device's capabilities are those of a context made on it. */
    enn_capabilities listed = {0}, made = {0};
    ENN_ASSERT_OK(enn_device_capabilities((uint32_t)index, &listed));
    cr_expect_str_eq(listed.device_name, infos[index].name);
    cr_expect_eq(listed.device_type, infos[index].type);
    enn_context *ctx = test_context();
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &made));
    test_context_finish(ctx);
    cr_expect_str_eq(listed.device_name, made.device_name);
    cr_expect_eq(listed.subgroup_size, made.subgroup_size);
    cr_expect_eq(listed.max_shared_memory, made.max_shared_memory);
    cr_expect_eq(listed.fp16_arithmetic, made.fp16_arithmetic);
    cr_expect_eq(listed.texel_buffer_f32, made.texel_buffer_f32);
    cr_expect_eq(listed.unified_memory, made.unified_memory);
    cr_expect_eq(listed.device_local_bytes, made.device_local_bytes);
    cr_expect_eq(enn_device_capabilities(count, &listed), ENN_ERROR_INVALID_ARGUMENT);
    char want[64];
    snprintf(want, sizeof want, "no device %u (there are %u)", count, count);
    cr_expect(strstr(enn_last_error(), want), "want \"%s\": %s", want, enn_last_error());
}

Test(runtime_context, capabilities_are_consistent)
{
    enn_context *ctx = test_context();
    enn_capabilities c = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &c));
    cr_expect(test_name_matches(c.device_name, test_device()), "context on %s, asked for %s", c.device_name, test_device());
    cr_expect_geq(c.api_version, VK_API_VERSION_1_1);
    cr_expect_gt(c.subgroup_size, 0);
    cr_expect_eq(c.subgroup_size & (c.subgroup_size - 1), 0, "subgroup size %u", c.subgroup_size);
    cr_expect(c.min_subgroup_size <= c.subgroup_size && c.subgroup_size <= c.max_subgroup_size);
    cr_expect_geq(c.max_shared_memory, 16384, "Vulkan guarantees 16 KiB of shared memory");
    cr_expect_geq(c.max_workgroup_invocations, 128);
    cr_expect_geq(c.max_workgroup_count[0], 65535);
    cr_expect_geq(c.max_push_constants_size, 128);
    cr_expect_gt(c.min_storage_buffer_offset_alignment, 0);
    cr_expect_eq(c.min_storage_buffer_offset_alignment & (c.min_storage_buffer_offset_alignment - 1), 0);
    cr_expect_leq(c.min_storage_buffer_offset_alignment, 256, "enn_view assumes offsets of 256 suffice");
    cr_expect_geq(c.max_storage_buffer_range, (uint64_t)1 << 27);
    cr_expect_gt(c.device_local_bytes, 0);
    if (c.timestamps) cr_expect_gt(c.timestamp_period_ns, 0);
    cr_expect(!c.cooperative_matrix || c.storage_16bit, "cooperative matrices without 16-bit storage");
    ENN_ASSERT_OK(enn_context_wait_idle(ctx));
    test_context_finish(ctx);
}

Test(runtime_context, device_by_index_and_environment)
{
    int idx = test_device_index();
    cr_assert_geq(idx, 0);
    char name[16];
    snprintf(name, sizeof name, "%d", idx);
    enn_context_options opt = {.device = name};
    enn_context *ctx = test_context_with(&opt);
    enn_capabilities c = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &c));
    cr_expect(test_name_matches(c.device_name, test_device()), "device %s is %s", name, c.device_name);
    test_context_finish(ctx);

    /* ENN_DEVICE stands in for options->device when that is NULL. */
    test_setenv("ENN_DEVICE", test_device());
    enn_context *env_ctx = NULL;
    enn_context_options none = {0};
    ENN_ASSERT_OK(enn_context_create(&none, &env_ctx));
    ENN_ASSERT_OK(enn_context_capabilities(env_ctx, &c));
    cr_expect(test_name_matches(c.device_name, test_device()), "ENN_DEVICE=%s gave %s", test_device(), c.device_name);
    cr_expect_eq(enn_context_validation_messages(env_ctx, NULL), 0);
    enn_context_destroy(env_ctx);

    /* A request that names no device: the message says where it came from; "-1" is a
     * name to look for, not index 2^64 - 1. */
    test_setenv("ENN_DEVICE", "999");
    cr_expect_eq(enn_context_create(&none, &env_ctx), ENN_ERROR_NO_DEVICE);
    cr_expect(strstr(enn_last_error(), "ENN_DEVICE=999: device index 999"), "%s", enn_last_error());
    test_setenv("ENN_DEVICE", "-1");
    cr_expect_eq(enn_context_create(&none, &env_ctx), ENN_ERROR_NO_DEVICE);
    cr_expect(strstr(enn_last_error(), "no usable Vulkan device matches \"-1\""), "%s", enn_last_error());
    enn_context_options bad = {.device = "no-such-device"};
    cr_expect_eq(enn_context_create(&bad, &env_ctx), ENN_ERROR_NO_DEVICE);
    cr_expect(strstr(enn_last_error(), "the device option=no-such-device"), "%s", enn_last_error());
    unsetenv("ENN_DEVICE");
}

/* ENN_VALIDATION=1 turns the layer on without the option: the misuse of
 * test_runtime_validation is counted. */
Test(runtime_context, validation_by_environment)
{
    test_setenv("ENN_VALIDATION", "1");
    enn_context_options opt = {.device = test_device()};
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create(&opt, &ctx));
    enn_vulkan_handles h = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &h));
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 256, .usage = 0,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer buf;
    if (vkCreateBuffer(h.device, &bi, NULL, &buf) == VK_SUCCESS) vkDestroyBuffer(h.device, buf, NULL);
    const char *first = NULL;
    cr_expect_geq(enn_context_validation_messages(ctx, &first), 1, "ENN_VALIDATION=1 did not turn validation on");
    cr_expect(strstr(first, "usage"), "first message: %s", first);
    enn_context_destroy(ctx);
}

/* 12 independent fills with at most 5 commands a submission: 3 submissions. */
static void expect_submits(enn_context *ctx, uint32_t want)
{
    enn_buffer *buf;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 12 * 256, &buf));
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    for (uint32_t i = 0; i < 12; i++) ENN_ASSERT_OK(enn_record_fill(rec, buf, i * 256, 256, i));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    cr_expect_eq(enn_recorder_get_stats(rec).submits, want);
    cr_expect_eq(enn_recorder_get_stats(rec).barriers, 0);
    uint32_t words[12 * 64];
    ENN_ASSERT_OK(enn_buffer_download(ctx, buf, 0, words, sizeof words));
    for (uint32_t i = 0; i < 12 * 64; i++) cr_assert_eq(words[i], i / 64, "word %u", i);
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, buf);
}

Test(runtime_context, dispatch_cap_by_option_and_environment)
{
    enn_context_options opt = {.max_dispatches_per_submit = 5};
    enn_context *ctx = test_context_with(&opt);
    expect_submits(ctx, 3);
    test_context_finish(ctx);
    test_setenv("ENN_MAX_DISPATCHES_PER_SUBMIT", "4");
    enn_context_options none = {0};
    ctx = test_context_with(&none);
    expect_submits(ctx, 3);
    test_context_finish(ctx);
    opt.max_dispatches_per_submit = 12; /* the option wins over the environment */
    ctx = test_context_with(&opt);
    expect_submits(ctx, 1);
    test_context_finish(ctx);
}

Test(runtime_context, dispatch_cap_out_of_range)
{
    enn_context_options opt = {.device = test_device(), .max_dispatches_per_submit = UINT32_MAX};
    enn_context *ctx = (enn_context *)1;
    enn_error_clear();
    cr_expect_eq(enn_context_create(&opt, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect_null(ctx);
    cr_expect(strstr(enn_last_error(), "max_dispatches_per_submit"), "message: %s", enn_last_error());
    opt.max_dispatches_per_submit = 0;
    const char *bad[] = {"abc", "-3", "99999999999999999999", "70000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_setenv("ENN_MAX_DISPATCHES_PER_SUBMIT", bad[i]);
        enn_error_clear();
        cr_expect_eq(enn_context_create(&opt, &ctx), ENN_ERROR_INVALID_ARGUMENT, "ENN_MAX_DISPATCHES_PER_SUBMIT=%s",
                     bad[i]);
        cr_expect(strstr(enn_last_error(), "ENN_MAX_DISPATCHES_PER_SUBMIT"), "message: %s", enn_last_error());
        if (ctx) enn_context_destroy(ctx);
    }
}

/* ---- struct_size (enn.h, "structs that grow"): enn_context_options and enn_capabilities */

/* The options as a newer enn.h would lay them out: the struct, then fields this libenn
 * does not know, in one buffer. */
typedef struct newer_options {
    enn_context_options opt;
    unsigned char newer[16];
} newer_options;

/* Options of struct_size 0, exactly this struct, or a newer struct with its new fields
 * zero: every field is read (an out-of-range cap is refused by name; a cap of 5 splits 12
 * fills into 3 submissions). */
Test(runtime_context, options_struct_size_zero_and_larger)
{
    const uint32_t sizes[] = {0, (uint32_t)sizeof(enn_context_options), (uint32_t)sizeof(newer_options)};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        newer_options o;
        memset(&o, 0, sizeof o);
        o.opt.struct_size = sizes[i];
        o.opt.device = test_device();
        o.opt.validation = 1;
        o.opt.max_dispatches_per_submit = 65537;
        enn_context *ctx = NULL;
        cr_expect_eq(enn_context_create(&o.opt, &ctx), ENN_ERROR_INVALID_ARGUMENT, "struct_size %u", sizes[i]);
        cr_expect(strstr(enn_last_error(), "max_dispatches_per_submit is 65537"), "struct_size %u: %s", sizes[i],
                  enn_last_error());
        o.opt.max_dispatches_per_submit = 5;
        ENN_ASSERT_OK(enn_context_create(&o.opt, &ctx));
        expect_submits(ctx, 3);
        cr_expect_eq(enn_context_validation_messages(ctx, NULL), 0);
        enn_context_destroy(ctx);
    }
}

Test(runtime_context, options_struct_size_refused)
{
    newer_options o;
    memset(&o, 0, sizeof o);
    o.opt.device = test_device();
    o.newer[5] = 1;   /* a field this libenn does not know, set */
    o.opt.struct_size = sizeof o;
    enn_context *ctx = (enn_context *)1;
    cr_expect_eq(enn_context_create(&o.opt, &ctx), ENN_ERROR_UNSUPPORTED);
    cr_expect_null(ctx);
    char bytes[64];
    snprintf(bytes, sizeof bytes, "(bytes %zu..%zu;", sizeof o.opt + 5, sizeof o.opt + 5);
    cr_expect(strstr(enn_last_error(), "enn_context_options") && strstr(enn_last_error(), bytes) &&
                  strstr(enn_last_error(), enn_version()),
              "want the struct, %s and the version: %s", bytes, enn_last_error());
    /* The same bytes past a struct_size that does not reach them are not read. */
    o.opt.struct_size = sizeof o.opt;
    ENN_ASSERT_OK(enn_context_create(&o.opt, &ctx));
    enn_context_destroy(ctx);
    /* Smaller than the struct has ever been: not a struct_size but a mistake. */
    o.opt.struct_size = 8;
    cr_expect_eq(enn_context_create(&o.opt, &ctx), ENN_ERROR_INVALID_ARGUMENT);
    char sizes[96];
    snprintf(sizes, sizeof sizes, "enn_context_options.struct_size is 8, below the %zu bytes",
             (size_t)ENN_CONTEXT_OPTIONS_SIZE_0_2);
    cr_expect(strstr(enn_last_error(), sizes), "want \"%s\": %s", sizes, enn_last_error());
}

Test(runtime_context, options_init)
{
    enn_context_options o, zero;
    memset(&o, 0xA5, sizeof o);
    memset(&zero, 0, sizeof zero);
    enn_context_options_init(&o);
    cr_expect_eq(o.struct_size, sizeof o);
    zero.struct_size = sizeof zero;
    cr_expect_eq(memcmp(&o, &zero, sizeof o), 0, "every option but struct_size is zero");
    o.device = test_device();
    enn_context *ctx = NULL;
    ENN_ASSERT_OK(enn_context_create(&o, &ctx));
    enn_context_destroy(ctx);
}

/* The capabilities in a caller's buffer with guard bytes after them. */
typedef struct guarded_caps {
    enn_capabilities caps;
    unsigned char guard[32];
} guarded_caps;

/* struct_size 0 or the 0.2 size: the 0.2 struct is filled and nothing after it; a caller
 * whose struct is larger than libenn's gets what libenn has, its struct_size saying so. */
Test(runtime_context, capabilities_struct_size)
{
    enn_context *ctx = test_context();
    const uint32_t sizes[] = {0, (uint32_t)ENN_CAPABILITIES_SIZE_0_2, (uint32_t)sizeof(guarded_caps)};
    const uint32_t want[] = {(uint32_t)ENN_CAPABILITIES_SIZE_0_2, (uint32_t)ENN_CAPABILITIES_SIZE_0_2,
                             (uint32_t)sizeof(enn_capabilities)};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        guarded_caps g;
        memset(&g, 0xA5, sizeof g);
        g.caps.struct_size = sizes[i];
        ENN_ASSERT_OK(enn_context_capabilities(ctx, &g.caps));
        cr_expect_eq(g.caps.struct_size, want[i], "struct_size %u came back as %u", sizes[i], g.caps.struct_size);
        cr_expect(test_name_matches(g.caps.device_name, test_device()), "struct_size %u: device %.32s", sizes[i],
                  g.caps.device_name);
        cr_expect(test_all_bytes(g.guard, sizeof g.guard, 0xA5), "struct_size %u: bytes after the struct were written",
                  sizes[i]);
    }
    guarded_caps g;
    memset(&g, 0xA5, sizeof g);
    g.caps.struct_size = 64;
    cr_expect_eq(enn_context_capabilities(ctx, &g.caps), ENN_ERROR_INVALID_ARGUMENT);
    char sizes64[96];
    snprintf(sizes64, sizeof sizes64, "enn_capabilities.struct_size is 64, below the %zu bytes",
             (size_t)ENN_CAPABILITIES_SIZE_0_2);
    cr_expect(strstr(enn_last_error(), sizes64), "want \"%s\": %s", sizes64, enn_last_error());
    cr_expect(test_all_bytes((const unsigned char *)g.caps.device_name, sizeof g.caps.device_name, 0xA5),
              "a refused call wrote into the struct");
    cr_expect_eq(g.caps.struct_size, 64);

    /* A device's capabilities without a context follow the same rule. */
    int index = test_device_index();
    cr_assert_geq(index, 0);
    memset(&g, 0xA5, sizeof g);
    g.caps.struct_size = 0;
    ENN_ASSERT_OK(enn_device_capabilities((uint32_t)index, &g.caps));
    cr_expect_eq(g.caps.struct_size, ENN_CAPABILITIES_SIZE_0_2);
    cr_expect(test_all_bytes(g.guard, sizeof g.guard, 0xA5), "enn_device_capabilities wrote past the caller's struct");
    g.caps.struct_size = 64;
    cr_expect_eq(enn_device_capabilities((uint32_t)index, &g.caps), ENN_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(enn_last_error(), sizes64), "want \"%s\": %s", sizes64, enn_last_error());
    test_context_finish(ctx);
}

/* What a later release relies on, with a libenn struct that has a field its caller's
 * lacks: a read zeroes the field and reads nothing past the caller's struct; a write
 * stops at the caller's struct and says how much it wrote. */
typedef struct caller_v1 {
    uint32_t struct_size;
    uint32_t a;
    uint64_t b;
} caller_v1;
typedef struct libenn_v2 {
    uint32_t struct_size;
    uint32_t a;
    uint64_t b;
    uint64_t added;
} libenn_v2;
typedef struct caller_buffer {
    caller_v1 s;
    unsigned char after[16];
} caller_buffer;

Test(runtime_context, struct_size_with_a_newer_libenn)
{
    const uint32_t sizes[] = {0, (uint32_t)sizeof(caller_v1)};   /* 0: the "0.2" size, caller_v1 */
    for (size_t i = 0; i < 2; i++) {
        caller_buffer in;
        memset(&in, 0xEE, sizeof in);
        in.s = (caller_v1){.struct_size = sizes[i], .a = 7, .b = 0x1122334455667788ull};
        libenn_v2 local;
        memset(&local, 0x77, sizeof local);
        ENN_ASSERT_OK(enn_struct_read("caller_v1", &in.s, sizeof(caller_v1), &local, sizeof local));
        cr_expect(local.a == 7 && local.b == 0x1122334455667788ull, "struct_size %u: fields not copied", sizes[i]);
        cr_expect_eq(local.added, 0, "struct_size %u: the field the caller lacks is %#llx, not 0", sizes[i],
                     (unsigned long long)local.added);
        cr_expect_eq(local.struct_size, sizeof local);

        caller_buffer out;
        memset(&out, 0xA5, sizeof out);
        out.s.struct_size = sizes[i];
        const libenn_v2 filled = {.struct_size = sizeof filled, .a = 9, .b = 10, .added = 11};
        ENN_ASSERT_OK(enn_struct_write("caller_v1", &out.s, &filled, sizeof(caller_v1), sizeof filled));
        cr_expect(out.s.a == 9 && out.s.b == 10, "struct_size %u: fields not written", sizes[i]);
        cr_expect_eq(out.s.struct_size, sizeof(caller_v1));
        cr_expect(test_all_bytes(out.after, sizeof out.after, 0xA5), "struct_size %u: written past the caller's struct",
                  sizes[i]);
    }
}
