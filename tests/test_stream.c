/* Streaming inference against whole-sequence evaluation. enn_model_evaluate is checked
 * against PyTorch float64 fixtures (test_model_fixtures.c); it is deterministic (h0 = 0,
 * H0 = 0, no noise, no dropout), so a stream stepped from a reset over x_1..x_T must
 * give its hidden states h_1..h_T, its final trace, and at every step t the output that
 * evaluate gives for the prefix x_1..x_t. The stream computes a step with other shapes
 * (B rows instead of T * Bp: other GEMM tilings and summation orders) and attention
 * pooling as running sums instead of a max-shifted softmax, so agreement is to fp32
 * rounding accumulated over a few steps: |a - b| <= TOL * (1 + |b|), TOL = 2e-5, about
 * 100 ulps of values of order 1 (an error in any op of the step is of order 1e-2 and
 * more).
 *
 * The external path records steps into the test's own command buffer, submitted with the
 * test's own fence, under synchronization validation, and must reproduce host steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "enn_vulkan.h"
#include "harness.h"
#include "runtime_helpers.h"

#define TOL 2e-5

static void expect_close(const float *got, const float *want, size_t n, const char *what, uint32_t t)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs((double)got[i] - want[i]) <= TOL * (1.0 + fabs(want[i])), "%s, step %u, element %zu: %.8g vs %.8g",
                  what, t, i, got[i], want[i]);
}

static enn_model_config small_config(enn_head_kind head)
{
    enn_model_config c;
    enn_model_config_init(&c, head);
    c.input_features = 3;
    c.max_seq_len = 6;
    c.max_batch = 3;
    c.outputs = 4;
    c.cell.hidden = 16;
    c.cell.memory_slots = 8;
    c.embedding_dim = 8;
    c.seed = 7;
    return c;
}

static float *random_floats(size_t n, uint64_t seed)
{
    float *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++) v[i] = (float)test_rand_uniform(&seed, -1.0, 1.0);
    return v;
}

/* A few training steps, so that no parameter is at its (often zero) initial value. */
static void train_a_little(enn_model *m, const enn_batch *b)
{
    for (int i = 0; i < 3; i++) ENN_ASSERT_OK(enn_model_train_step(m, b, NULL));
}

/* Steps a stream of B through the batch, comparing states and outputs with evaluate. */
static void check_stream(enn_model *m, const enn_batch *batch)
{
    const enn_model_config *c = enn_model_get_config(m);
    uint32_t B = batch->size, T = batch->seq_len, h = c->cell.hidden, N = c->cell.memory_slots, K = c->outputs;
    uint32_t d = c->input_features;
    int lm = c->head == ENN_HEAD_LANGUAGE_MODEL;
    int per_step = lm || (c->head == ENN_HEAD_REGRESSOR && c->return_sequences);
    size_t trace = (size_t)(c->cell.trace_mode == ENN_TRACE_PER_SAMPLE ? B : 1) * N * h;

    /* Evaluate the whole sequence: hidden states, final trace, outputs. */
    float *hs = malloc((size_t)T * B * h * sizeof *hs), *H_T = malloc(trace * sizeof *H_T);
    float *full = malloc((size_t)B * T * K * sizeof *full);
    float *out = malloc((size_t)B * K * sizeof *out), *want = malloc((size_t)B * K * sizeof *want);
    float *h_now = malloc((size_t)B * h * sizeof *h_now), *H_now = malloc(trace * sizeof *H_now);
    float *x_t = malloc((size_t)B * d * sizeof *x_t);
    uint32_t *tok_t = malloc(B * sizeof *tok_t);
    ENN_ASSERT_OK(enn_model_evaluate(m, batch, NULL, full));
    ENN_ASSERT_OK(enn_model_read(m, "out.hs", hs, (size_t)T * B * h));
    ENN_ASSERT_OK(enn_model_read(m, "out.H_T", H_T, trace));

    enn_stream *s;
    ENN_ASSERT_OK(enn_stream_create(m, B, &s));
    cr_assert_eq(enn_stream_outputs(s), K);
    for (uint32_t t = 0; t < T; t++) {
        if (lm) {
            for (uint32_t b = 0; b < B; b++) tok_t[b] = batch->tokens[(size_t)b * T + t];
            ENN_ASSERT_OK(enn_stream_step_tokens(s, tok_t, out));
        } else {
            for (uint32_t b = 0; b < B; b++) memcpy(x_t + (size_t)b * d, batch->x + ((size_t)b * T + t) * d, d * 4);
            ENN_ASSERT_OK(enn_stream_step(s, x_t, out));
        }
        cr_assert_eq(enn_stream_position(s), t + 1);
        ENN_ASSERT_OK(enn_stream_state(s, h_now, NULL));
        expect_close(h_now, hs + (size_t)t * B * h, (size_t)B * h, "h", t);
        if (per_step) {
            /* Sequence outputs: row t of evaluate's [B, T, K]. */
            for (uint32_t b = 0; b < B; b++) memcpy(want + (size_t)b * K, full + ((size_t)b * T + t) * K, K * 4);
        } else if (t + 1 == T) {
            memcpy(want, full, (size_t)B * K * 4);
        } else {
            /* What evaluate says about the prefix x_1..x_t+1. */
            enn_batch p = *batch;
            p.seq_len = t + 1;
            float *px = malloc((size_t)B * (t + 1) * d * sizeof *px);
            for (uint32_t b = 0; b < B; b++)
                memcpy(px + (size_t)b * (t + 1) * d, batch->x + (size_t)b * T * d, (size_t)(t + 1) * d * 4);
            p.x = px;
            ENN_ASSERT_OK(enn_model_evaluate(m, &p, NULL, want));
            free(px);
        }
        expect_close(out, want, (size_t)B * K, "output", t);
    }
    ENN_ASSERT_OK(enn_stream_state(s, NULL, H_now));
    expect_close(H_now, H_T, trace, "H_T", T);

    /* A reset starts over: the first step again. */
    ENN_ASSERT_OK(enn_stream_reset(s));
    cr_assert_eq(enn_stream_position(s), 0);
    if (lm) {
        for (uint32_t b = 0; b < B; b++) tok_t[b] = batch->tokens[(size_t)b * T];
        ENN_ASSERT_OK(enn_stream_step_tokens(s, tok_t, NULL));
    } else {
        for (uint32_t b = 0; b < B; b++) memcpy(x_t + (size_t)b * d, batch->x + (size_t)b * T * d, d * 4);
        ENN_ASSERT_OK(enn_stream_step(s, x_t, NULL));
    }
    ENN_ASSERT_OK(enn_stream_state(s, h_now, NULL));
    expect_close(h_now, hs, (size_t)B * h, "h after reset", 0);
    enn_stream_destroy(s);
    free(hs); free(H_T); free(full); free(out); free(want); free(h_now); free(H_now); free(x_t);
    free(tok_t);
}

static void run_case(enn_model_config *c, uint32_t B, uint32_t T)
{
    enn_context *ctx = test_context();
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, c, &m));
    uint32_t d = c->input_features, K = c->outputs;
    float *x = random_floats((size_t)B * T * d, 11);
    float *y = random_floats((size_t)B * T * K, 12);
    uint32_t labels[8], tokens[64], targets[64];
    uint64_t seed = 13;
    for (uint32_t i = 0; i < B; i++) labels[i] = (uint32_t)(test_rand_u64(&seed) % K);
    for (uint32_t i = 0; i < B * T; i++) {
        tokens[i] = 1 + (uint32_t)(test_rand_u64(&seed) % (K - 1));
        targets[i] = (uint32_t)(test_rand_u64(&seed) % K);
    }
    enn_batch b = {.size = B, .seq_len = T, .x = x, .tokens = tokens, .labels = labels, .y = y, .targets = targets};
    train_a_little(m, &b);
    check_stream(m, &b);
    enn_model_destroy(m);
    free(x);
    free(y);
    test_context_finish(ctx);
}

Test(stream, classifier_attention_pooling_shared_trace)
{
    enn_model_config c = small_config(ENN_HEAD_CLASSIFIER);
    run_case(&c, 2, 5);
}

Test(stream, classifier_last_state_per_sample_no_layer_norm)
{
    enn_model_config c = small_config(ENN_HEAD_CLASSIFIER);
    c.pooling = ENN_POOL_LAST;
    c.cell.trace_mode = ENN_TRACE_PER_SAMPLE;
    c.cell.layer_norm = 0;
    run_case(&c, 3, 4);
}

Test(stream, regressor_sequences_odd_hidden)
{
    /* h = 12: W_u's row blocks do not start on view boundaries (staged copies). */
    enn_model_config c = small_config(ENN_HEAD_REGRESSOR);
    c.return_sequences = 1;
    c.cell.hidden = 12;
    run_case(&c, 1, 6);
}

Test(stream, regressor_last_state)
{
    enn_model_config c = small_config(ENN_HEAD_REGRESSOR);
    c.outputs = 2;
    run_case(&c, 2, 4);
}

Test(stream, language_model_embedding)
{
    enn_model_config c = small_config(ENN_HEAD_LANGUAGE_MODEL);
    c.outputs = 11;
    run_case(&c, 2, 5);
}

Test(stream, language_model_float_feature_per_sample)
{
    enn_model_config c = small_config(ENN_HEAD_LANGUAGE_MODEL);
    c.lm_input = ENN_LM_FLOAT_FEATURE;
    c.input_features = 1;
    c.outputs = 7;
    c.cell.trace_mode = ENN_TRACE_PER_SAMPLE;
    run_case(&c, 2, 4);
}

Test(stream, rejects_bad_arguments)
{
    enn_context *ctx = test_context();
    enn_model_config c = small_config(ENN_HEAD_CLASSIFIER);
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    enn_stream *s = (enn_stream *)1;
    cr_assert_eq(enn_stream_create(m, c.max_batch + 1, &s), ENN_ERROR_SHAPE);
    cr_assert_null(s);
    cr_assert_eq(enn_stream_create(NULL, 1, &s), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_stream_create(m, 0, &s));
    cr_assert_eq(enn_stream_position(s), 0);
    uint32_t tok = 0;
    cr_assert_eq(enn_stream_step_tokens(s, &tok, NULL), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(enn_stream_step(s, NULL, NULL), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(enn_stream_record(s, VK_NULL_HANDLE, NULL), ENN_ERROR_INVALID_ARGUMENT);
    /* An offset that wraps past the end of any buffer: refused before anything is
     * recorded (the command buffer handle is never touched). */
    enn_buffer *b;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 256, &b));
    enn_stream_io io = {.input_offset = UINT64_MAX - 3};
    VkDeviceSize off, size;
    ENN_ASSERT_OK(enn_buffer_vulkan(b, &io.input, &off, &size));
    cr_assert_eq(enn_stream_record(s, (VkCommandBuffer)(uintptr_t)1, &io), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "runs past the end"), "%s", enn_last_error());
    enn_buffer_destroy(ctx, b);
    enn_stream_destroy(s);
    enn_model_destroy(m);

    /* Baselines are not streamed (yet): said so, not mis-run. */
    c.kind = ENN_MODEL_GRU;
    c.layers = 1;
    c.layer_units[0] = 8;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    cr_assert_eq(enn_stream_create(m, 1, &s), ENN_ERROR_UNSUPPORTED);
    enn_model_destroy(m);
    test_context_finish(ctx);
}

/* ---- the caller's command buffer */

/* The test's own command pool on the context's queue family, and n primary command
 * buffers from it (what a renderer would have). */
static VkCommandPool caller_commands(const enn_vulkan_handles *vk, VkCommandPoolCreateFlags flags, uint32_t n,
                                     VkCommandBuffer *cmd)
{
    VkCommandPool pool;
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .flags = flags,
                                   .queueFamilyIndex = vk->queue_family};
    cr_assert_eq(vkCreateCommandPool(vk->device, &pci, NULL, &pool), VK_SUCCESS);
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = n};
    cr_assert_eq(vkAllocateCommandBuffers(vk->device, &ai, cmd), VK_SUCCESS);
    return pool;
}

static void external_case(int pool_path)
{
    test_sync_validation();
    if (pool_path) test_setenv("ENN_DISABLE_PUSH_DESCRIPTORS", "1");
    enn_context *ctx = test_context();
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    if (!pool_path && !caps.push_descriptors) {
        enn_context_destroy(ctx);
        cr_skip_test("%s has no push descriptors", caps.device_name);
    }
    cr_assert_eq(caps.push_descriptors, !pool_path);

    enn_model_config c = small_config(ENN_HEAD_CLASSIFIER);
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    const uint32_t B = 2, T = 5, d = c.input_features, K = c.outputs;
    float *x = random_floats((size_t)T * B * d, 21); /* [T, B, d]: one frame after another */

    /* Host steps: the expected outputs. */
    enn_stream *host;
    ENN_ASSERT_OK(enn_stream_create(m, B, &host));
    float want[5][2 * 4], got[2 * 4];
    for (uint32_t t = 0; t < T; t++) ENN_ASSERT_OK(enn_stream_step(host, x + (size_t)t * B * d, want[t]));
    float h_want[2 * 16], h_got[2 * 16];
    ENN_ASSERT_OK(enn_stream_state(host, h_want, NULL));

    /* The test's own command pool, buffer and fence on the context's device and queue. */
    enn_vulkan_handles vk = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &vk));
    VkCommandBuffer cmd;
    VkCommandPool pool = caller_commands(&vk, VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, 1, &cmd);
    VkFence fence;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    cr_assert_eq(vkCreateFence(vk.device, &fci, NULL, &fence), VK_SUCCESS);

    /* Input and output in libenn buffers, at offsets that are not multiples of anything. */
    enn_buffer *in, *outb;
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4096, &in));
    ENN_ASSERT_OK(enn_buffer_create(ctx, 4096, &outb));
    enn_stream_io io;
    VkDeviceSize off, size;
    ENN_ASSERT_OK(enn_buffer_vulkan(in, &io.input, &off, &size));
    io.input_offset = off + 12;
    ENN_ASSERT_OK(enn_buffer_vulkan(outb, &io.output, &off, &size));
    io.output_offset = off + 20;

    enn_stream *ext;
    ENN_ASSERT_OK(enn_stream_create(m, B, &ext));
    for (uint32_t t = 0; t < T; t++) {
        ENN_ASSERT_OK(enn_buffer_upload(ctx, in, 12, x + (size_t)t * B * d, (size_t)B * d * 4));
        /* Steps 0-2 record anew each time; steps 3 and 4 resubmit step 2's recording. */
        if (t <= 2) {
            cr_assert_eq(vkResetCommandBuffer(cmd, 0), VK_SUCCESS);
            VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
            cr_assert_eq(vkBeginCommandBuffer(cmd, &bi), VK_SUCCESS);
            ENN_ASSERT_OK(enn_stream_record(ext, cmd, &io));
            cr_assert_eq(vkEndCommandBuffer(cmd), VK_SUCCESS);
        }
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
        cr_assert_eq(vkQueueSubmit(vk.queue, 1, &si, fence), VK_SUCCESS);
        cr_assert_eq(vkWaitForFences(vk.device, 1, &fence, VK_TRUE, UINT64_MAX), VK_SUCCESS);
        cr_assert_eq(vkResetFences(vk.device, 1, &fence), VK_SUCCESS);
        ENN_ASSERT_OK(enn_buffer_download(ctx, outb, 20, got, (size_t)B * K * 4));
        /* The same kernels on the same data: expected bit for bit, checked with TOL. */
        expect_close(got, want[t], (size_t)B * K, "recorded output", t);
    }
    cr_assert_eq(enn_stream_position(ext), 3);
    ENN_ASSERT_OK(enn_stream_state(ext, h_got, NULL));
    expect_close(h_got, h_want, (size_t)B * 16, "recorded h", T);

    vkDestroyFence(vk.device, fence, NULL);
    vkDestroyCommandPool(vk.device, pool, NULL);
    enn_buffer_destroy(ctx, in);
    enn_buffer_destroy(ctx, outb);
    enn_stream_destroy(ext);
    enn_stream_destroy(host);
    enn_model_destroy(m);
    free(x);
    test_context_finish(ctx);
}

/* A renderer records frame N+1 while frame N's command buffer is still to run: with
 * push descriptors both recordings stay valid (their texel views are kept), and run in
 * order they give the host steps' outputs. */
Test(stream, recordings_in_flight_push_descriptors)
{
    test_sync_validation();
    enn_context *ctx = test_context();
    enn_capabilities caps = {0};
    ENN_ASSERT_OK(enn_context_capabilities(ctx, &caps));
    if (!caps.push_descriptors) {
        enn_context_destroy(ctx);
        cr_skip_test("%s has no push descriptors", caps.device_name);
    }
    enn_model_config c = small_config(ENN_HEAD_CLASSIFIER);
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    const uint32_t B = 2, d = c.input_features, K = c.outputs;
    float *x = random_floats((size_t)2 * B * d, 33), want[2][2 * 4], got[2 * 4];
    enn_stream *host, *ext;
    ENN_ASSERT_OK(enn_stream_create(m, B, &host));
    ENN_ASSERT_OK(enn_stream_create(m, B, &ext));
    for (uint32_t t = 0; t < 2; t++) ENN_ASSERT_OK(enn_stream_step(host, x + (size_t)t * B * d, want[t]));

    enn_vulkan_handles vk = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &vk));
    VkCommandBuffer cmd[2];
    VkCommandPool pool = caller_commands(&vk, 0, 2, cmd);
    enn_buffer *in[2], *out[2];
    for (uint32_t t = 0; t < 2; t++) {
        ENN_ASSERT_OK(enn_buffer_create(ctx, 1024, &in[t]));
        ENN_ASSERT_OK(enn_buffer_create(ctx, 1024, &out[t]));
        ENN_ASSERT_OK(enn_buffer_upload(ctx, in[t], 0, x + (size_t)t * B * d, (size_t)B * d * 4));
        enn_stream_io io;
        VkDeviceSize off, size;
        ENN_ASSERT_OK(enn_buffer_vulkan(in[t], &io.input, &io.input_offset, &size));
        ENN_ASSERT_OK(enn_buffer_vulkan(out[t], &io.output, &off, &size));
        io.output_offset = off;
        VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        cr_assert_eq(vkBeginCommandBuffer(cmd[t], &bi), VK_SUCCESS);
        ENN_ASSERT_OK(enn_stream_record(ext, cmd[t], &io));
        cr_assert_eq(vkEndCommandBuffer(cmd[t]), VK_SUCCESS);
    }
    /* Both recorded before either runs; then frame 0, then frame 1. */
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 2, .pCommandBuffers = cmd};
    cr_assert_eq(vkQueueSubmit(vk.queue, 1, &si, VK_NULL_HANDLE), VK_SUCCESS);
    cr_assert_eq(vkQueueWaitIdle(vk.queue), VK_SUCCESS);
    for (uint32_t t = 0; t < 2; t++) {
        ENN_ASSERT_OK(enn_buffer_download(ctx, out[t], 0, got, (size_t)B * K * 4));
        expect_close(got, want[t], (size_t)B * K, "frame recorded while another was in flight", t);
        enn_buffer_destroy(ctx, in[t]);
        enn_buffer_destroy(ctx, out[t]);
    }
    vkDestroyCommandPool(vk.device, pool, NULL);
    enn_stream_destroy(ext);
    enn_stream_destroy(host);
    enn_model_destroy(m);
    free(x);
    test_context_finish(ctx);
}

/* The same without push descriptors: each recording holds descriptor sets from a pool of
 * its own until it has run, so three may be in flight at once; a fourth is refused (by
 * a message that says why) until one of them has run, and a recording that is dropped
 * holds its slot until the stream is reset. */
Test(stream, recordings_in_flight_descriptor_pools)
{
    test_sync_validation();
    test_setenv("ENN_DISABLE_PUSH_DESCRIPTORS", "1");
    enn_context *ctx = test_context();
    enn_model_config c = small_config(ENN_HEAD_CLASSIFIER);
    enn_model *m;
    ENN_ASSERT_OK(enn_model_create(ctx, &c, &m));
    enum { FRAMES = 4 };
    const uint32_t B = 2, d = c.input_features, K = c.outputs;
    float *x = random_floats((size_t)FRAMES * B * d, 35), want[FRAMES][2 * 4], got[2 * 4];
    enn_stream *host, *ext;
    ENN_ASSERT_OK(enn_stream_create(m, B, &host));
    ENN_ASSERT_OK(enn_stream_create(m, B, &ext));
    for (uint32_t t = 0; t < FRAMES; t++) ENN_ASSERT_OK(enn_stream_step(host, x + (size_t)t * B * d, want[t]));

    enn_vulkan_handles vk = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &vk));
    VkCommandBuffer cmd[FRAMES];
    VkCommandPool pool = caller_commands(&vk, VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, FRAMES, cmd);
    enn_buffer *in[FRAMES], *out[FRAMES];
    enn_stream_io io[FRAMES];
    for (uint32_t t = 0; t < FRAMES; t++) {
        ENN_ASSERT_OK(enn_buffer_create(ctx, 1024, &in[t]));
        ENN_ASSERT_OK(enn_buffer_create(ctx, 1024, &out[t]));
        ENN_ASSERT_OK(enn_buffer_upload(ctx, in[t], 0, x + (size_t)t * B * d, (size_t)B * d * 4));
        VkDeviceSize size;
        ENN_ASSERT_OK(enn_buffer_vulkan(in[t], &io[t].input, &io[t].input_offset, &size));
        ENN_ASSERT_OK(enn_buffer_vulkan(out[t], &io[t].output, &io[t].output_offset, &size));
    }
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    /* Frames 0-2 recorded before any runs; frame 3 is refused meanwhile. */
    for (uint32_t t = 0; t < FRAMES; t++) {
        cr_assert_eq(vkBeginCommandBuffer(cmd[t], &bi), VK_SUCCESS);
        if (t < FRAMES - 1) ENN_ASSERT_OK(enn_stream_record(ext, cmd[t], &io[t]));
    }
    cr_assert_eq(enn_stream_record(ext, cmd[3], &io[3]), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(enn_last_error(), "enn_stream_record: the last 3 recordings have not run yet"), "%s",
              enn_last_error());
    for (uint32_t t = 0; t < FRAMES - 1; t++) cr_assert_eq(vkEndCommandBuffer(cmd[t]), VK_SUCCESS);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 3, .pCommandBuffers = cmd};
    cr_assert_eq(vkQueueSubmit(vk.queue, 1, &si, VK_NULL_HANDLE), VK_SUCCESS);
    cr_assert_eq(vkQueueWaitIdle(vk.queue), VK_SUCCESS);
    /* They have run: frame 3 goes. */
    ENN_ASSERT_OK(enn_stream_record(ext, cmd[3], &io[3]));
    cr_assert_eq(vkEndCommandBuffer(cmd[3]), VK_SUCCESS);
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd[3];
    cr_assert_eq(vkQueueSubmit(vk.queue, 1, &si, VK_NULL_HANDLE), VK_SUCCESS);
    cr_assert_eq(vkQueueWaitIdle(vk.queue), VK_SUCCESS);
    for (uint32_t t = 0; t < FRAMES; t++) {
        ENN_ASSERT_OK(enn_buffer_download(ctx, out[t], 0, got, (size_t)B * K * 4));
        expect_close(got, want[t], (size_t)B * K, "frame recorded while others were in flight", t);
    }

    /* Three recordings dropped (never submitted): refused until the stream is reset. */
    for (uint32_t t = 0; t < 3; t++) {
        cr_assert_eq(vkResetCommandBuffer(cmd[t], 0), VK_SUCCESS);
        cr_assert_eq(vkBeginCommandBuffer(cmd[t], &bi), VK_SUCCESS);
        ENN_ASSERT_OK(enn_stream_record(ext, cmd[t], &io[t]));
        cr_assert_eq(vkEndCommandBuffer(cmd[t]), VK_SUCCESS);
    }
    cr_assert_eq(vkResetCommandBuffer(cmd[3], 0), VK_SUCCESS);
    cr_assert_eq(vkBeginCommandBuffer(cmd[3], &bi), VK_SUCCESS);
    cr_assert_eq(enn_stream_record(ext, cmd[3], &io[3]), ENN_ERROR_INVALID_ARGUMENT);
    for (uint32_t t = 0; t < 3; t++) cr_assert_eq(vkResetCommandBuffer(cmd[t], 0), VK_SUCCESS);
    ENN_ASSERT_OK(enn_stream_reset(ext));
    ENN_ASSERT_OK(enn_stream_record(ext, cmd[3], &io[3]));
    cr_assert_eq(vkEndCommandBuffer(cmd[3]), VK_SUCCESS);
    cr_assert_eq(vkQueueSubmit(vk.queue, 1, &si, VK_NULL_HANDLE), VK_SUCCESS);
    cr_assert_eq(vkQueueWaitIdle(vk.queue), VK_SUCCESS);
    /* From a reset, frame 3's input gives what a fresh host stream gives. */
    ENN_ASSERT_OK(enn_stream_reset(host));
    ENN_ASSERT_OK(enn_stream_step(host, x + (size_t)3 * B * d, want[0]));
    ENN_ASSERT_OK(enn_buffer_download(ctx, out[3], 0, got, (size_t)B * K * 4));
    expect_close(got, want[0], (size_t)B * K, "frame recorded after a reset", 0);

    for (uint32_t t = 0; t < FRAMES; t++) {
        enn_buffer_destroy(ctx, in[t]);
        enn_buffer_destroy(ctx, out[t]);
    }
    vkDestroyCommandPool(vk.device, pool, NULL);
    enn_stream_destroy(ext);
    enn_stream_destroy(host);
    enn_model_destroy(m);
    free(x);
    test_context_finish(ctx);
}

Test(stream, recorded_into_callers_command_buffer_push_descriptors) { external_case(0); }
Test(stream, recorded_into_callers_command_buffer_descriptor_pool) { external_case(1); }

/* The recorder's external mode: never submits, never nests, ends once. */
Test(stream, external_recorder_rules)
{
    enn_context *ctx = test_context();
    enn_vulkan_handles vk = {0};
    ENN_ASSERT_OK(enn_context_vulkan_handles(ctx, &vk));
    VkCommandBuffer cmd;
    VkCommandPool pool = caller_commands(&vk, 0, 1, &cmd);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    cr_assert_eq(vkBeginCommandBuffer(cmd, &bi), VK_SUCCESS);
    enn_recorder *rec;
    ENN_ASSERT_OK(enn_recorder_create(ctx, &rec));
    cr_assert_eq(enn_recorder_end_external(rec, 1), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_recorder_begin_external(rec, cmd, "test"));
    cr_assert_eq(enn_recorder_begin_external(rec, cmd, "test"), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(enn_recorder_begin(rec), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(enn_recorder_submit(rec), ENN_ERROR_INVALID_ARGUMENT);
    ENN_ASSERT_OK(enn_recorder_end_external(rec, 0));
    cr_assert_eq(enn_recorder_end_external(rec, 0), ENN_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(enn_recorder_get_stats(rec).submits, 0);
    /* The recorder still works on its own afterwards. */
    ENN_ASSERT_OK(enn_recorder_begin(rec));
    ENN_ASSERT_OK(enn_recorder_run(rec));
    enn_recorder_destroy(rec);
    cr_assert_eq(vkEndCommandBuffer(cmd), VK_SUCCESS);
    vkDestroyCommandPool(vk.device, pool, NULL);
    test_context_finish(ctx);
}
