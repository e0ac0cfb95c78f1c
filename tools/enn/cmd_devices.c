/* enn devices: every Vulkan device with its capabilities, and the one libenn picks. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "enn.h"

static const char *type_name(enn_device_type t)
{
    switch (t) {
    case ENN_DEVICE_DISCRETE_GPU: return "discrete GPU";
    case ENN_DEVICE_INTEGRATED_GPU: return "integrated GPU";
    case ENN_DEVICE_VIRTUAL_GPU: return "virtual GPU";
    case ENN_DEVICE_CPU: return "CPU";
    default: return "other";
    }
}

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x10de: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x106b: return "Apple";
    case 0x13b5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x10005: return "Mesa";
    default: return "unknown";
    }
}

static const char *yes(int v) { return v ? "yes" : "no"; }

int cmd_devices(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: enn devices\n\nLists every Vulkan device with the capabilities libenn uses, after the\n"
               "ENN_DISABLE_* switches, and marks the one enn_context_create would choose\n"
               "(ENN_DEVICE=<index or name> overrides the choice).\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "enn devices: unexpected argument '%s' (it takes none; ENN_DEVICE picks the device)\n", argv[1]);
        return 2;
    }
    enn_device_info infos[16];
    uint32_t count = 0;
    if (enn_list_devices(infos, 16, &count) != ENN_OK) {
        fprintf(stderr, "enn devices: %s\n", enn_last_error());
        return 1;
    }
    /* Why none is chosen, if so: said after the list (the calls below may set their own). */
    char why[512];
    snprintf(why, sizeof why, "%s", enn_last_error()[0] ? enn_last_error() : "none is usable");
    int any_chosen = 0;
    for (uint32_t i = 0; i < count && i < 16; i++) {
        enn_capabilities caps = {0};
        if (enn_device_capabilities(infos[i].index, &caps) != ENN_OK) {
            fprintf(stderr, "enn devices: device %u (%s): %s\n", infos[i].index, infos[i].name, enn_last_error());
            return 1;
        }
        const enn_capabilities *c = &caps;
        any_chosen |= infos[i].chosen;
        printf("%s device %u: %s\n", infos[i].chosen ? "*" : " ", i, c->device_name);
        printf("    type %s, vendor %s (0x%04x), device 0x%04x, Vulkan %u.%u.%u\n", type_name(c->device_type),
               vendor_name(c->vendor_id), c->vendor_id, c->device_id, c->api_version >> 22,
               (c->api_version >> 12) & 0x3ff, c->api_version & 0xfff);
        printf("    driver %s %s (version 0x%08x)\n", c->driver_name, c->driver_info, c->driver_version);
        printf("    subgroup size %u (range %u-%u, size control %s, arithmetic %s)\n", c->subgroup_size,
               c->min_subgroup_size, c->max_subgroup_size, yes(c->subgroup_size_control), yes(c->subgroup_arithmetic));
        printf("    shared memory %u bytes, workgroup up to %u invocations (%u x %u x %u)\n", c->max_shared_memory,
               c->max_workgroup_invocations, c->max_workgroup_size[0], c->max_workgroup_size[1], c->max_workgroup_size[2]);
        printf("    storage binding up to %llu bytes, device-local memory %.1f GiB%s\n",
               (unsigned long long)c->max_storage_buffer_range, c->device_local_bytes / 1073741824.0,
               c->unified_memory ? " (unified with the host)" : "");
        printf("    fp16 arithmetic %s, 16-bit storage %s, push descriptors %s, timestamps %s\n", yes(c->fp16_arithmetic),
               yes(c->storage_16bit), yes(c->push_descriptors), yes(c->timestamps));
        printf("    cooperative matrix %s%s", yes(c->cooperative_matrix), c->cooperative_matrix_khr ? " (KHR present)" : "");
        for (uint32_t k = 0; k < c->coopmat_shape_count; k++)
            if (c->coopmat_shapes[k].a_type == ENN_F16 && c->coopmat_shapes[k].c_type == ENN_F32)
                printf(" %ux%ux%u", c->coopmat_shapes[k].m, c->coopmat_shapes[k].n, c->coopmat_shapes[k].k);
        printf("\n");
    }
    if (!any_chosen) {
        fprintf(stderr, "enn devices: no device would be chosen: %s\n", why);
        return 1;
    }
    printf("* = the device libenn chooses (ENN_DEVICE overrides)\n");
    return 0;
}
