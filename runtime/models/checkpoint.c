/* Checkpoints: a model's parameters, Adam moments, counters and carried state in one
 * safetensors file (the format is described in enn.h, above enn_model_save).
 *
 *   save:  download params / adam.m / adam.v (and a stateful model's carried slab),
 *          write them with the config as metadata, atomically (io/safetensors.c)
 *   load:  read the whole file, check the metadata and every tensor against the model's
 *          layout, and only then upload: a rejected file leaves the model untouched
 *
 * Resuming bit for bit needs more than the weights: the step (Adam's bias correction),
 * the pass counter (it picks the Philox streams of the initial state, the trace noise
 * and dropout), the learning rate (it can change during training) and, for a stateful
 * model, the hidden state and trace it carries into the next batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/config_json.h"
#include "models/model.h"

#define FORMAT_NAME "enn.checkpoint"
#define FORMAT_VERSION 1
#define MOMENT_KINDS 3 /* params, adam.m, adam.v */

static const char *const kind_prefix[MOMENT_KINDS] = {"", "adam.m.", "adam.v."};

static enn_buffer *kind_buffer(enn_model *m, int kind)
{
    return kind == 0 ? m->params : kind == 1 ? m->adam_m : m->adam_v;
}

/* The carried state of a stateful model: slab last_T of hs ([Bp, h]) and of H
 * ([nH, N, h]), which the next pass copies to slab 0. */
static int has_carried_state(const enn_model *m) { return m->config.cell.stateful && m->have_state; }

/* CRC-32 (zlib's) of the tensors' bytes in the order given, in chunks zlib can take. */
static uint32_t tensors_crc32(const enn_st_tensor *const *tensors, uint32_t count)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *p = tensors[i]->data;
        uint64_t left = enn_st_elements(tensors[i]) * enn_st_dtype_size(tensors[i]->dtype);
        while (left) {
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, n);
            p += n;
            left -= n;
        }
    }
    return (uint32_t)crc;
}

static uint64_t state_h_floats(const enn_model *m) { return (uint64_t)m->cell.Bp * m->cell.h; }
static uint64_t state_H_floats(const enn_model *m) { return (uint64_t)m->cell.nH * m->cell.N * m->cell.h; }

/* The metadata keys libenn writes: a caller's entries may not take them. */
static const char *const own_keys[] = {"format", "format_version", "config", "step", "passes", "state_T", "state_B",
                                       "data_crc32", NULL};

static enn_status check_extra(const char *path, const enn_metadata *extra, uint32_t count)
{
    if (count && !extra) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "saving %s: %u metadata entries at NULL", path, count);
    if (count > 64) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "saving %s: %u metadata entries (at most 64)", path, count);
    for (uint32_t i = 0; i < count; i++) {
        if (!extra[i].key || !extra[i].key[0] || !extra[i].value)
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "saving %s: metadata entry %u has no key or no value", path, i);
        for (int k = 0; own_keys[k]; k++)
            if (!strcmp(extra[i].key, own_keys[k]))
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "saving %s: metadata key \"%s\" is libenn's own", path,
                                 extra[i].key);
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(extra[i].key, extra[j].key))
                return enn_error(ENN_ERROR_INVALID_ARGUMENT, "saving %s: metadata key \"%s\" given twice", path,
                                 extra[i].key);
    }
    return ENN_OK;
}

enn_status enn_model_save(enn_model *m, const char *path) { return enn_model_save_with_metadata(m, path, NULL, 0); }

enn_status enn_model_save_with_metadata(enn_model *m, const char *path, const enn_metadata *extra, uint32_t extra_count)
{
    if (!m || !path) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_save: NULL argument");
    ENN_TRY(check_extra(path, extra, extra_count));
    const enn_layout *l = &m->layout;
    int state = has_carried_state(m);
    enn_st_tensor tensors[MOMENT_KINDS * ENN_MAX_TENSORS + 2];
    char names[MOMENT_KINDS * ENN_MAX_TENSORS][ENN_TENSOR_NAME + 8];
    float *host[MOMENT_KINDS] = {0}, *state_h = NULL, *state_H = NULL;
    char *config = NULL;
    uint32_t count = 0;
    enn_status s = ENN_OK;
    for (int k = 0; k < MOMENT_KINDS && s == ENN_OK; k++) {
        host[k] = malloc(l->bytes);
        if (!host[k]) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "saving %s", path);
        else s = enn_buffer_download(m->ctx, kind_buffer(m, k), 0, host[k], l->bytes);
    }
    for (int k = 0; k < MOMENT_KINDS && s == ENN_OK; k++)
        for (uint32_t i = 0; i < l->count; i++) {
            const enn_tensor_info *t = &l->tensors[i];
            snprintf(names[count], sizeof names[count], "%s%s", kind_prefix[k], t->name);
            tensors[count] = (enn_st_tensor){.name = names[count], .dtype = ENN_ST_F32, .rank = t->rank,
                                             .shape = {t->shape[0], t->shape[1]},
                                             .data = (const char *)host[k] + t->offset};
            count++;
        }
    if (s == ENN_OK && state) {
        state_h = malloc(state_h_floats(m) * 4);
        state_H = malloc(state_H_floats(m) * 4);
        if (!state_h || !state_H) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "saving %s", path);
        if (s == ENN_OK)
            s = enn_buffer_download(m->ctx, m->cell.hs, (uint64_t)m->last_T * enn_cell_row_slab(&m->cell, m->cell.h),
                                    state_h, state_h_floats(m) * 4);
        if (s == ENN_OK)
            s = enn_buffer_download(m->ctx, enn_cell_trace(&m->cell, m->last_T, m->last_T).buf,
                                    enn_cell_trace(&m->cell, m->last_T, m->last_T).offset, state_H,
                                    state_H_floats(m) * 4);
        tensors[count++] = (enn_st_tensor){.name = "state.h", .dtype = ENN_ST_F32, .rank = 2,
                                           .shape = {m->cell.Bp, m->cell.h}, .data = state_h};
        tensors[count++] = (enn_st_tensor){.name = "state.H", .dtype = ENN_ST_F32, .rank = 3,
                                           .shape = {m->cell.nH, m->cell.N, m->cell.h}, .data = state_H};
    }
    if (s == ENN_OK) s = enn_model_config_to_json(&m->config, &config);
    if (s == ENN_OK) {
        /* The data section holds the tensors in this order: its checksum lets a load
         * refuse flipped bits that no shape or offset check could see. */
        const enn_st_tensor *order[MOMENT_KINDS * ENN_MAX_TENSORS + 2];
        for (uint32_t i = 0; i < count; i++) order[i] = &tensors[i];
        char crc[16];
        snprintf(crc, sizeof crc, "%08x", tensors_crc32(order, count));
        char version[16], step[24], passes[24], st_T[16], st_B[16];
        snprintf(version, sizeof version, "%d", FORMAT_VERSION);
        snprintf(step, sizeof step, "%llu", (unsigned long long)m->step);
        snprintf(passes, sizeof passes, "%llu", (unsigned long long)m->passes);
        snprintf(st_T, sizeof st_T, "%u", state ? m->last_T : 0);
        snprintf(st_B, sizeof st_B, "%u", state ? m->last_B : 0);
        enn_st_meta meta[8 + 64] = {{"format", FORMAT_NAME}, {"format_version", version}, {"config", config},
                                    {"step", step}, {"passes", passes}, {"state_T", st_T}, {"state_B", st_B},
                                    {"data_crc32", crc}};
        for (uint32_t i = 0; i < extra_count; i++) meta[8 + i] = (enn_st_meta){extra[i].key, extra[i].value};
        s = enn_safetensors_write(path, tensors, count, meta, 8 + extra_count);
    }
    for (int k = 0; k < MOMENT_KINDS; k++) free(host[k]);
    free(state_h);
    free(state_H);
    free(config);
    return s;
}

/* A checkpoint read and parsed, not yet checked against a model. */
typedef struct checkpoint {
    enn_safetensors *st;
    enn_model_config config;
    uint64_t step, passes;
    uint32_t state_T, state_B;
} checkpoint;

static enn_status meta_u64(const checkpoint *c, const char *key, uint64_t max, uint64_t *out)
{
    const char *path = enn_safetensors_path(c->st), *v = enn_safetensors_meta(c->st, key);
    if (!v) return enn_error(ENN_ERROR_FORMAT, "%s: the checkpoint's metadata lacks \"%s\"", path, key);
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (!(*v >= '0' && *v <= '9') || *end || n > max)
        return enn_error(ENN_ERROR_FORMAT, "%s: metadata \"%s\" = \"%s\" is not an integer in 0..%llu", path, key, v,
                         (unsigned long long)max);
    *out = n;
    return ENN_OK;
}

static int by_data_offset(const void *a, const void *b)
{
    const unsigned char *x = (*(const enn_st_tensor *const *)a)->data, *y = (*(const enn_st_tensor *const *)b)->data;
    return x < y ? -1 : x > y;
}

/* "data_crc32", when present (enn writes it; other writers need not), must match the
 * tensors' bytes in file order. */
static enn_status check_crc(const enn_safetensors *st)
{
    const char *path = enn_safetensors_path(st), *want = enn_safetensors_meta(st, "data_crc32");
    if (!want) return ENN_OK;
    uint32_t n = enn_safetensors_count(st);
    const enn_st_tensor **order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "checking %s", path);
    for (uint32_t i = 0; i < n; i++) order[i] = enn_safetensors_at(st, i);
    qsort(order, n, sizeof *order, by_data_offset);
    char got[16];
    snprintf(got, sizeof got, "%08x", tensors_crc32(order, n));
    free(order);
    if (strcmp(got, want))
        return enn_error(ENN_ERROR_FORMAT, "%s: the tensor data's CRC-32 is %s, the checkpoint says %s (corrupted file)",
                         path, got, want);
    return ENN_OK;
}

static enn_status read_checkpoint(const char *path, checkpoint *c)
{
    memset(c, 0, sizeof *c);
    ENN_TRY(enn_safetensors_read(path, &c->st));
    const char *format = enn_safetensors_meta(c->st, "format");
    if (!format || strcmp(format, FORMAT_NAME))
        return enn_error(ENN_ERROR_FORMAT, "%s: not an enn checkpoint (metadata \"format\" is %s%s%s, not \"%s\")", path,
                         format ? "\"" : "", format ? format : "absent", format ? "\"" : "", FORMAT_NAME);
    uint64_t version, T, B;
    ENN_TRY(meta_u64(c, "format_version", UINT32_MAX, &version));
    if (version != FORMAT_VERSION)
        return enn_error(ENN_ERROR_FORMAT, "%s: checkpoint format version %llu; this libenn reads version %d", path,
                         (unsigned long long)version, FORMAT_VERSION);
    ENN_TRY(check_crc(c->st));
    const char *config = enn_safetensors_meta(c->st, "config");
    if (!config) return enn_error(ENN_ERROR_FORMAT, "%s: the checkpoint's metadata lacks \"config\"", path);
    ENN_TRY(enn_model_config_from_json(config, path, &c->config));
    enn_status s = enn_model_config_check(&c->config);
    if (s != ENN_OK) {
        /* The reason lives in the buffer enn_error writes: copy it out first. */
        char reason[512];
        snprintf(reason, sizeof reason, "%s", enn_last_error());
        return enn_error(ENN_ERROR_FORMAT, "%s: the checkpoint's config is invalid: %s", path, reason);
    }
    ENN_TRY(meta_u64(c, "step", UINT64_MAX, &c->step));
    ENN_TRY(meta_u64(c, "passes", UINT64_MAX, &c->passes));
    ENN_TRY(meta_u64(c, "state_T", c->config.max_seq_len, &T));
    ENN_TRY(meta_u64(c, "state_B", c->config.max_batch, &B));
    c->state_T = (uint32_t)T;
    c->state_B = (uint32_t)B;
    if ((T == 0) != (B == 0))
        return enn_error(ENN_ERROR_FORMAT, "%s: metadata state_T = %u and state_B = %u: both or neither must be 0", path,
                         c->state_T, c->state_B);
    if (T && !c->config.cell.stateful)
        return enn_error(ENN_ERROR_FORMAT, "%s: carried state (state_T = %u) in a checkpoint of a model that is not stateful",
                         path, c->state_T);
    return ENN_OK;
}

static void shape_text(char *buf, size_t size, uint32_t rank, const uint64_t *shape)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (uint32_t i = 0; i < rank && n < size; i++) n += (size_t)snprintf(buf + n, size - n, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/* One expected tensor: present, F32, of this shape. */
static enn_status expect_tensor(const checkpoint *c, const char *name, uint32_t rank, const uint64_t *shape,
                                const enn_st_tensor **out)
{
    const char *path = enn_safetensors_path(c->st);
    const enn_st_tensor *t = enn_safetensors_find(c->st, name);
    if (!t) return enn_error(ENN_ERROR_FORMAT, "%s: the checkpoint lacks tensor \"%s\"", path, name);
    if (t->dtype != ENN_ST_F32)
        return enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" is %s; the model's is F32", path, name,
                         enn_st_dtype_name(t->dtype));
    int same = t->rank == rank;
    for (uint32_t i = 0; same && i < rank; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[96], want[96];
        shape_text(got, sizeof got, t->rank, t->shape);
        shape_text(want, sizeof want, rank, shape);
        return enn_error(ENN_ERROR_SHAPE, "%s: tensor \"%s\" has shape %s; the model's is %s", path, name, got, want);
    }
    *out = t;
    return ENN_OK;
}

/* Checks the checkpoint against the model and, only when all of it fits, uploads it. */
static enn_status apply_checkpoint(enn_model *m, const checkpoint *c)
{
    const enn_layout *l = &m->layout;
    const char *path = enn_safetensors_path(c->st);
    const enn_st_tensor *found[MOMENT_KINDS][ENN_MAX_TENSORS];
    const enn_st_tensor *state_h = NULL, *state_H = NULL;
    uint32_t expected = MOMENT_KINDS * l->count;
    for (int k = 0; k < MOMENT_KINDS; k++)
        for (uint32_t i = 0; i < l->count; i++) {
            const enn_tensor_info *t = &l->tensors[i];
            char name[ENN_TENSOR_NAME + 8];
            snprintf(name, sizeof name, "%s%s", kind_prefix[k], t->name);
            uint64_t shape[2] = {t->shape[0], t->shape[1]};
            ENN_TRY(expect_tensor(c, name, t->rank, shape, &found[k][i]));
        }
    if (c->state_T) {
        if (!m->config.cell.stateful)
            return enn_error(ENN_ERROR_FORMAT, "%s: the checkpoint carries state but the model is not stateful", path);
        if (c->state_T > m->config.max_seq_len || c->state_B > m->config.max_batch)
            return enn_error(ENN_ERROR_SHAPE, "%s: carried state of T = %u, B = %u exceeds the model's %u, %u", path,
                             c->state_T, c->state_B, m->config.max_seq_len, m->config.max_batch);
        uint64_t sh[2] = {m->cell.Bp, m->cell.h}, sH[3] = {m->cell.nH, m->cell.N, m->cell.h};
        ENN_TRY(expect_tensor(c, "state.h", 2, sh, &state_h));
        ENN_TRY(expect_tensor(c, "state.H", 3, sH, &state_H));
        expected += 2;
    }
    if (enn_safetensors_count(c->st) != expected) {
        /* Everything expected is there, so something else is too: name it. */
        for (uint32_t i = 0; i < enn_safetensors_count(c->st); i++) {
            const char *name = enn_safetensors_at(c->st, i)->name;
            int known = (state_h && !strcmp(name, "state.h")) || (state_H && !strcmp(name, "state.H"));
            for (int k = 0; k < MOMENT_KINDS && !known; k++) {
                size_t n = strlen(kind_prefix[k]);
                known = !strncmp(name, kind_prefix[k], n) && enn_layout_find(l, name + n);
            }
            if (!known)
                return enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" is not part of this model", path, name);
        }
        return enn_error(ENN_ERROR_FORMAT, "%s: %u tensors; the model has %u", path, enn_safetensors_count(c->st),
                         expected);
    }

    /* Everything checks out: assemble the flat buffers on the host, then upload. */
    float *host = calloc(1, l->bytes);
    if (!host) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "loading %s", path);
    enn_status s = ENN_OK;
    for (int k = 0; k < MOMENT_KINDS && s == ENN_OK; k++) {
        for (uint32_t i = 0; i < l->count; i++)
            memcpy((char *)host + l->tensors[i].offset, found[k][i]->data, l->tensors[i].count * 4);
        s = enn_buffer_upload(m->ctx, kind_buffer(m, k), 0, host, l->bytes);
    }
    free(host);
    if (s == ENN_OK && state_h)
        s = enn_buffer_upload(m->ctx, m->cell.hs, (uint64_t)c->state_T * enn_cell_row_slab(&m->cell, m->cell.h),
                              state_h->data, state_h_floats(m) * 4);
    if (s == ENN_OK && state_H)
        s = enn_buffer_upload(m->ctx, (enn_buffer *)enn_cell_trace(&m->cell, c->state_T, c->state_T).buf,
                              enn_cell_trace(&m->cell, c->state_T, c->state_T).offset, state_H->data,
                              state_H_floats(m) * 4);
    ENN_TRY(s);
    m->step = c->step;
    m->passes = c->passes;
    m->config.optimizer.learning_rate = c->config.optimizer.learning_rate;
    if (m->config.cell.stateful) {
        /* The next pass starts from slab state_T; with no state it draws (or zeroes) h0, H0. */
        m->have_state = c->state_T != 0;
        if (c->state_T) {
            m->last_T = c->state_T;
            m->last_B = c->state_B;
        }
    }
    return ENN_OK;
}

enn_status enn_model_load_into(enn_model *m, const char *path)
{
    if (!m || !path) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_load_into: NULL argument");
    checkpoint c;
    enn_status s = read_checkpoint(path, &c);
    if (s == ENN_OK) s = apply_checkpoint(m, &c);
    enn_safetensors_free(c.st);
    return s;
}

enn_status enn_model_load(enn_context *ctx, const char *path, enn_model **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_load: out is NULL");
    *out = NULL;
    if (!ctx || !path) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_load: NULL argument");
    checkpoint c;
    enn_model *m = NULL;
    enn_status s = read_checkpoint(path, &c);
    if (s == ENN_OK) s = enn_model_create(ctx, &c.config, &m);
    if (s == ENN_OK) s = apply_checkpoint(m, &c);
    enn_safetensors_free(c.st);
    if (s != ENN_OK) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", enn_last_error());
        enn_model_destroy(m);
        return enn_error(s, "%s", saved);
    }
    *out = m;
    return ENN_OK;
}

enn_status enn_checkpoint_metadata(const char *path, const char *key, char **value)
{
    if (!path || !key || !value) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_checkpoint_metadata: NULL argument");
    *value = NULL;
    enn_safetensors *st;
    ENN_TRY(enn_safetensors_read(path, &st));
    const char *v = enn_safetensors_meta(st, key);
    enn_status s = ENN_OK;
    if (v && !(*value = strdup(v))) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: metadata \"%s\"", path, key);
    enn_safetensors_free(st);
    return s;
}
