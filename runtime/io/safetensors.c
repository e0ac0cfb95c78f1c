#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"

/* A header larger than this is not a checkpoint of ours (and the reference library
 * refuses it too). */
#define MAX_HEADER_BYTES (100u << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ENN_ST_F32] = {"F32", 4}, [ENN_ST_F64] = {"F64", 8}, [ENN_ST_F16] = {"F16", 2}, [ENN_ST_I32] = {"I32", 4},
    [ENN_ST_I64] = {"I64", 8}, [ENN_ST_U8] = {"U8", 1},   [ENN_ST_U32] = {"U32", 4},
};
#define DTYPE_COUNT (sizeof dtypes / sizeof dtypes[0])

size_t enn_st_dtype_size(enn_st_dtype t) { return (unsigned)t < DTYPE_COUNT ? dtypes[t].size : 0; }
const char *enn_st_dtype_name(enn_st_dtype t) { return (unsigned)t < DTYPE_COUNT ? dtypes[t].name : "?"; }

uint64_t enn_st_elements(const enn_st_tensor *t)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

struct enn_safetensors {
    char *path;
    unsigned char *data;        /* the whole data section */
    uint64_t data_bytes;
    enn_st_tensor *tensors;
    char **names;
    uint32_t count;
    char **meta_keys, **meta_values;
    uint32_t meta_count;
};

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* RFC 3629 UTF-8 (no overlongs, surrogates or code points past U+10FFFF), the check
 * jansson makes on keys and strings: testing first keeps a bad name an invalid argument,
 * so that any jansson failure after it is an allocation. */
static int is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++, n, min;
        if (c < 0x80) continue;
        if (c >= 0xc2 && c <= 0xdf) n = 1, min = 0x80, c &= 0x1f;
        else if (c >= 0xe0 && c <= 0xef) n = 2, min = 0x800, c &= 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) n = 3, min = 0x10000, c &= 0x07;
        else return 0;
        for (unsigned k = 0; k < n; k++, p++) {
            if ((*p & 0xc0) != 0x80) return 0;
            c = c << 6 | (*p & 0x3fu);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    }
    return 1;
}

#define OOM(what, ...) \
    enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory building the safetensors header " what, __VA_ARGS__)

/* {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, or NULL when out of memory. */
static json_t *tensor_entry(const enn_st_tensor *t, uint64_t begin, uint64_t end)
{
    json_t *entry = json_object(), *shape = json_array(), *offsets = json_array();
    int bad = !entry || !shape || !offsets;
    for (uint32_t k = 0; k < t->rank && !bad; k++)
        bad = json_array_append_new(shape, json_integer((json_int_t)t->shape[k]));
    if (!bad) bad = json_array_append_new(offsets, json_integer((json_int_t)begin)) ||
                    json_array_append_new(offsets, json_integer((json_int_t)end));
    if (!bad) bad = json_object_set_new(entry, "dtype", json_string(dtypes[t->dtype].name));
    /* set_new takes the value even when it fails. */
    if (!bad) bad = json_object_set_new(entry, "shape", shape);
    else json_decref(shape);
    if (!bad) bad = json_object_set_new(entry, "data_offsets", offsets);
    else json_decref(offsets);
    if (bad) {
        json_decref(entry);
        return NULL;
    }
    return entry;
}

enn_status enn_safetensors_write(const char *path, const enn_st_tensor *tensors, uint32_t count,
                                 const enn_st_meta *meta, uint32_t meta_count)
{
    if (!path || (count && !tensors) || (meta_count && !meta))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "safetensors write: NULL argument");
    for (uint32_t i = 0; i < meta_count; i++)
        if (!meta[i].key || !meta[i].value || !is_utf8(meta[i].key) || !is_utf8(meta[i].value))
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "safetensors write %s: metadata %u (%s) is NULL or not UTF-8", path,
                             i, meta[i].key && is_utf8(meta[i].key) ? meta[i].key : "?");
    /* The whole header is built, every jansson call checked, before the file is opened:
     * running out of memory here leaves the previous file as it was. */
    json_t *root = json_object();
    if (!root) return OOM("(%s)", path);
    if (meta_count) {
        json_t *m = json_object();
        int bad = !m;
        for (uint32_t i = 0; i < meta_count && !bad; i++)
            bad = json_object_set_new(m, meta[i].key, json_string(meta[i].value));
        if (bad || json_object_set_new(root, "__metadata__", m)) {
            if (bad) json_decref(m);
            json_decref(root);
            return OOM("(%s: metadata)", path);
        }
    }
    uint64_t offset = 0;
    for (uint32_t i = 0; i < count; i++) {
        const enn_st_tensor *t = &tensors[i];
        if (!t->name || !t->name[0] || !is_utf8(t->name) || (unsigned)t->dtype >= DTYPE_COUNT ||
            t->rank > ENN_ST_MAX_RANK || (!t->data && enn_st_elements(t)) || json_object_get(root, t->name)) {
            json_decref(root);
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "safetensors write %s: tensor %u (%s) is invalid or repeated",
                             path, i, t->name && is_utf8(t->name) ? t->name : "(null or not UTF-8)");
        }
        uint64_t bytes = enn_st_elements(t) * dtypes[t->dtype].size;
        if (json_object_set_new(root, t->name, tensor_entry(t, offset, offset + bytes))) {
            json_decref(root);
            return OOM("(%s: tensor %s)", path, t->name);
        }
        offset += bytes;
    }
    char *header = enn_json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!header) return OOM("(%s: text)", path);
    size_t hlen = strlen(header);
    /* Pad the header with spaces so the data starts 8-byte aligned (the format allows it). */
    size_t padded = (hlen + 7) / 8 * 8;

    enn_atomic_file af;
    enn_status s = enn_atomic_open(&af, path);
    if (s != ENN_OK) {
        free(header);
        return s;
    }
    unsigned char len[8];
    put_u64le(len, padded);
    s = enn_atomic_write(&af, len, 8);
    if (s == ENN_OK) s = enn_atomic_write(&af, header, hlen);
    for (size_t i = hlen; i < padded && s == ENN_OK; i++) s = enn_atomic_write(&af, " ", 1);
    for (uint32_t i = 0; i < count && s == ENN_OK; i++)
        s = enn_atomic_write(&af, tensors[i].data, (size_t)(enn_st_elements(&tensors[i]) * dtypes[tensors[i].dtype].size));
    free(header);
    if (s != ENN_OK) {
        enn_atomic_abort(&af);
        return s;
    }
    return enn_atomic_commit(&af);
}

void enn_safetensors_free(enn_safetensors *st)
{
    if (!st) return;
    for (uint32_t i = 0; i < st->count; i++) free(st->names[i]);
    for (uint32_t i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->names);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->tensors);
    free(st->data);
    free(st->path);
    free(st);
}

static int parse_dtype(const char *s, enn_st_dtype *out)
{
    for (unsigned i = 0; i < DTYPE_COUNT; i++)
        if (!strcmp(s, dtypes[i].name)) { *out = (enn_st_dtype)i; return 1; }
    return 0;
}

typedef struct span { uint64_t begin, end; } span;
static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Validates the parsed header against the data section and fills st. */
static enn_status parse_header(enn_safetensors *st, json_t *root)
{
    const char *p = st->path;
    if (!json_is_object(root)) return enn_error(ENN_ERROR_FORMAT, "%s: the header is not a JSON object", p);
    size_t n = json_object_size(root);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->names = calloc(n ? n : 1, sizeof *st->names);
    span *spans = calloc(n ? n : 1, sizeof *spans);
    if (!st->tensors || !st->names || !spans) {
        free(spans);
        return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (%zu tensors)", p, n);
    }
    const char *key;
    json_t *value;
    enn_status s = ENN_OK;
    json_object_foreach(root, key, value) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(value)) { s = enn_error(ENN_ERROR_FORMAT, "%s: __metadata__ is not an object", p); break; }
            size_t m = json_object_size(value);
            st->meta_keys = calloc(m ? m : 1, sizeof(char *));
            st->meta_values = calloc(m ? m : 1, sizeof(char *));
            if (!st->meta_keys || !st->meta_values) {
                s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (metadata)", p);
                break;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(value, mk, mv) {
                if (!json_is_string(mv)) { s = enn_error(ENN_ERROR_FORMAT, "%s: metadata \"%s\" is not a string", p, mk); break; }
                char *k = strdup(mk), *v = strdup(json_string_value(mv));
                if (!k || !v) {
                    free(k);
                    free(v);
                    s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (metadata \"%s\")", p, mk);
                    break;
                }
                st->meta_keys[st->meta_count] = k;
                st->meta_values[st->meta_count] = v;
                st->meta_count++;
            }
            if (s != ENN_OK) break;
            continue;
        }
        const char *dtype_s = NULL;
        json_t *shape = NULL, *offsets = NULL;
        json_error_t uerr;
        int unpacked = !json_unpack_ex(value, &uerr, 0, "{s:s, s:o, s:o}", "dtype", &dtype_s, "shape", &shape,
                                       "data_offsets", &offsets);
        /* json_unpack allocates (a set of the keys seen): its failure need not be the file's. */
        if (!unpacked && json_error_code(&uerr) == json_error_out_of_memory) {
            s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (tensor \"%s\")", p, key);
            break;
        }
        if (!unpacked || !json_is_array(shape) || !json_is_array(offsets) || json_array_size(offsets) != 2) {
            s = enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" lacks dtype, shape or data_offsets", p, key);
            break;
        }
        enn_st_tensor *t = &st->tensors[st->count];
        if (!parse_dtype(dtype_s, &t->dtype)) {
            s = enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" has unsupported dtype %s", p, key, dtype_s);
            break;
        }
        if (json_array_size(shape) > ENN_ST_MAX_RANK) {
            s = enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" has rank %zu (at most %d)", p, key, json_array_size(shape), ENN_ST_MAX_RANK);
            break;
        }
        t->rank = (uint32_t)json_array_size(shape);
        uint64_t elements = 1;
        int bad = 0;
        for (uint32_t k = 0; k < t->rank; k++) {
            json_t *d = json_array_get(shape, k);
            if (!json_is_integer(d) || json_integer_value(d) < 0) { bad = 1; break; }
            t->shape[k] = (uint64_t)json_integer_value(d);
            if (t->shape[k] && elements > UINT64_MAX / 16 / t->shape[k]) { bad = 1; break; }
            elements *= t->shape[k];
        }
        json_t *b = json_array_get(offsets, 0), *e = json_array_get(offsets, 1);
        if (bad || !json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b)) {
            s = enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" has a malformed shape or data_offsets", p, key);
            break;
        }
        uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
        if (end - begin != elements * dtypes[t->dtype].size) {
            s = enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" spans %llu bytes but its shape and dtype need %llu", p, key,
                          (unsigned long long)(end - begin), (unsigned long long)(elements * dtypes[t->dtype].size));
            break;
        }
        if (end > st->data_bytes) {
            s = enn_error(ENN_ERROR_FORMAT, "%s: tensor \"%s\" ends at byte %llu of a %llu-byte data section (truncated file?)",
                          p, key, (unsigned long long)end, (unsigned long long)st->data_bytes);
            break;
        }
        st->names[st->count] = strdup(key);
        if (!st->names[st->count]) {
            s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (tensor \"%s\")", p, key);
            break;
        }
        t->name = st->names[st->count];
        t->data = st->data + begin;
        spans[st->count] = (span){begin, end};
        st->count++;
    }
    if (s == ENN_OK) {
        qsort(spans, st->count, sizeof *spans, span_cmp);
        for (uint32_t i = 1; i < st->count; i++)
            if (spans[i].begin < spans[i - 1].end) {
                s = enn_error(ENN_ERROR_FORMAT, "%s: two tensors share bytes %llu..%llu", p,
                              (unsigned long long)spans[i].begin, (unsigned long long)spans[i - 1].end);
                break;
            }
        /* Bytes after the last tensor belong to nothing (a file with something appended). */
        uint64_t last = st->count ? spans[st->count - 1].end : 0;
        if (s == ENN_OK && last != st->data_bytes)
            s = enn_error(ENN_ERROR_FORMAT, "%s: %llu bytes after the last tensor (byte %llu of a %llu-byte data section)",
                          p, (unsigned long long)(st->data_bytes - last), (unsigned long long)last,
                          (unsigned long long)st->data_bytes);
    }
    free(spans);
    return s;
}

enn_status enn_safetensors_read(const char *path, enn_safetensors **out)
{
    if (!path || !out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "safetensors read: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        /* fopen allocates the FILE: ENOMEM is the host's memory, not the file. */
        int e = errno;
        return enn_error(e == ENOMEM ? ENN_ERROR_OUT_OF_HOST_MEMORY : ENN_ERROR_IO, "cannot open %s: %s", path, strerror(e));
    }
    struct stat info;
    if (fstat(fileno(f), &info) == 0 && !S_ISREG(info.st_mode)) {
        fclose(f);
        return enn_error(ENN_ERROR_IO, "%s is %s", path, S_ISDIR(info.st_mode) ? "a directory" : "not a regular file");
    }
    enn_safetensors *st = calloc(1, sizeof *st);
    enn_status s = ENN_OK;
    char *header = NULL;
    json_t *root = NULL;
    if (!st || !(st->path = strdup(path))) {
        s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s", path);
        goto done;
    }
    if (fseek(f, 0, SEEK_END) != 0) { s = enn_error(ENN_ERROR_IO, "cannot seek in %s", path); goto done; }
    long size = ftell(f);
    rewind(f);
    unsigned char len[8];
    if (size < 8 || fread(len, 8, 1, f) != 1) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: %ld bytes is too short for a safetensors file", path, size);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len[i] << (8 * i);
    if (hlen == 0 || hlen > MAX_HEADER_BYTES || hlen > (uint64_t)size - 8) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: header length %llu does not fit a %ld-byte file (not safetensors, or truncated)",
                      path, (unsigned long long)hlen, size);
        goto done;
    }
    header = malloc(hlen + 1);
    st->data_bytes = (uint64_t)size - 8 - hlen;
    st->data = malloc(st->data_bytes ? st->data_bytes : 1);
    if (!header || !st->data) {
        s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (%llu bytes)", path,
                      (unsigned long long)(hlen + st->data_bytes));
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen || (st->data_bytes && fread(st->data, 1, st->data_bytes, f) != st->data_bytes)) {
        s = enn_error(ENN_ERROR_IO, "cannot read %s", path);
        goto done;
    }
    header[hlen] = '\0';
    json_error_t jerr;
    memset(&jerr, 0, sizeof jerr);   /* jansson leaves the code unset on some failures */
    errno = 0;
    root = json_loadb(header, hlen, 0, &jerr);
    if (enn_json_load_out_of_memory(root, &jerr, errno)) {
        s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory reading %s (its %llu-byte header)", path,
                      (unsigned long long)hlen);
        goto done;
    }
    if (!root) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: the header is not valid JSON (%s, at character %d)", path, jerr.text, jerr.position);
        goto done;
    }
    s = parse_header(st, root);
done:
    json_decref(root);
    free(header);
    fclose(f);
    if (s != ENN_OK) { enn_safetensors_free(st); return s; }
    *out = st;
    return ENN_OK;
}

uint32_t enn_safetensors_count(const enn_safetensors *st) { return st ? st->count : 0; }
const enn_st_tensor *enn_safetensors_at(const enn_safetensors *st, uint32_t i)
{
    return st && i < st->count ? &st->tensors[i] : NULL;
}
const enn_st_tensor *enn_safetensors_find(const enn_safetensors *st, const char *name)
{
    for (uint32_t i = 0; st && i < st->count; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}
const char *enn_safetensors_meta(const enn_safetensors *st, const char *key)
{
    for (uint32_t i = 0; st && i < st->meta_count; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}
const char *enn_safetensors_path(const enn_safetensors *st) { return st ? st->path : NULL; }
