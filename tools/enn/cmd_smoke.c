/* enn smoke: proves the chosen device runs libenn's kernels, by a chain of dependent
 * dispatches whose exact result is known. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "core/context.h"
#include "core/recorder.h"
#include "enn.h"

int cmd_smoke(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: enn smoke\n\nRuns 1000 dependent dispatches (y += x) on the chosen device and checks that\n"
               "y = 1000 x exactly.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "enn smoke: unexpected argument '%s' (it takes none; ENN_DEVICE picks the device)\n", argv[1]);
        return 2;
    }
    enn_context *ctx = NULL;
    enn_buffer *x = NULL, *y = NULL;
    enn_recorder *rec = NULL;
    const uint32_t n = 1 << 16, steps = 1000;
    float *host = malloc(n * sizeof *host);
    int rc = 1;
    struct timespec t0, t1;
    if (!host || enn_context_create(NULL, &ctx) != ENN_OK) goto fail;
    printf("device: %s\n", ctx->caps.device_name);
    for (uint32_t i = 0; i < n; i++) host[i] = (float)(i % 13) * 0.25f;
    if (enn_buffer_create(ctx, n * 4, &x) || enn_buffer_create(ctx, n * 4, &y) ||
        enn_buffer_upload(ctx, x, 0, host, n * 4) || enn_recorder_create(ctx, &rec))
        goto fail;
    const uint32_t spec[1] = {256};
    const enn_pipeline *p;
    enn_pipeline_desc d = {.shader = "elementwise", .num_buffers = 2, .push_size = 16, .spec = spec, .spec_count = 1};
    if (enn_pipeline_get(ctx, &d, &p) || enn_recorder_begin(rec) || enn_record_fill(rec, y, 0, 0, 0)) goto fail;
    struct { uint32_t n, op; float alpha, beta; } push = {n, 0, 1.0f, 1.0f};
    enn_binding b[2] = {ENN_IN(x), ENN_INOUT(y)};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t s = 0; s < steps; s++)
        if (enn_record_dispatch(rec, p, b, 2, &push, n / 256, 1, 1, "axpby")) goto fail;
    if (enn_recorder_run(rec) || enn_buffer_download(ctx, y, 0, host, n * 4)) goto fail;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (uint32_t i = 0; i < n; i++)
        if (host[i] != (float)(i % 13) * 0.25f * steps) {
            fprintf(stderr, "enn smoke: y[%u] = %g, expected %g\n", i, host[i], (i % 13) * 0.25 * steps);
            goto done;
        }
    enn_recorder_stats st = enn_recorder_get_stats(rec);
    printf("ok: %u dependent dispatches, %u barriers, %u submissions, %.1f ms\n", st.dispatches, st.barriers,
           st.submits, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "enn smoke: %s\n", enn_last_error());
done:
    enn_recorder_destroy(rec);
    enn_buffer_destroy(ctx, x);
    enn_buffer_destroy(ctx, y);
    enn_context_destroy(ctx);
    free(host);
    return rc;
}
