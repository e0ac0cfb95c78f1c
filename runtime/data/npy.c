/* .npy files: numpy's own format (a magic, a version, a Python dict literal describing
 * dtype, order and shape, then the raw C-order data).
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html */
#include <stdlib.h>
#include <string.h>

#include "data/array.h"
#include "data/file.h"

#define NPY_MAGIC "\x93NUMPY"

/* ---------------------------------------------------------------- header parsing */
typedef struct header_parser {
    const char *p, *end, *start;
    const char *path;
} header_parser;

static void skip_space(header_parser *hp)
{
    while (hp->p < hp->end && (*hp->p == ' ' || *hp->p == '\t' || *hp->p == '\n' || *hp->p == '\r')) hp->p++;
}

static enn_status bad_header(header_parser *hp, const char *what)
{
    return enn_error(ENN_ERROR_FORMAT, "%s: malformed .npy header: %s (at header offset %td)", hp->path, what,
                     hp->p - hp->start);
}

static int expect(header_parser *hp, char c)
{
    skip_space(hp);
    if (hp->p < hp->end && *hp->p == c) {
        hp->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes (all numpy writes here). */
static int parse_string(header_parser *hp, char *out, size_t cap)
{
    skip_space(hp);
    if (hp->p >= hp->end || (*hp->p != '\'' && *hp->p != '"')) return 0;
    char quote = *hp->p++;
    size_t n = 0;
    while (hp->p < hp->end && *hp->p != quote) {
        if (n + 1 >= cap) return 0;
        out[n++] = *hp->p++;
    }
    if (hp->p >= hp->end) return 0;
    hp->p++;
    out[n] = '\0';
    return 1;
}

static int parse_word(header_parser *hp, const char *word)
{
    skip_space(hp);
    size_t n = strlen(word);
    if ((size_t)(hp->end - hp->p) >= n && memcmp(hp->p, word, n) == 0) {
        hp->p += n;
        return 1;
    }
    return 0;
}

static enn_status parse_shape(header_parser *hp, enn_array *a)
{
    if (!expect(hp, '(')) return bad_header(hp, "'shape' is not a tuple");
    a->rank = 0;
    for (;;) {
        skip_space(hp);
        if (hp->p < hp->end && *hp->p == ')') {
            hp->p++;
            return ENN_OK;
        }
        if (hp->p >= hp->end || *hp->p < '0' || *hp->p > '9') return bad_header(hp, "'shape' holds something other than a non-negative integer");
        uint64_t v = 0;
        while (hp->p < hp->end && *hp->p >= '0' && *hp->p <= '9') {
            uint64_t digit = (uint64_t)(*hp->p++ - '0');
            if (v > (UINT64_MAX - digit) / 10) return bad_header(hp, "a 'shape' dimension overflows 64 bits");
            v = v * 10 + digit;
        }
        if (hp->p < hp->end && *hp->p == 'L') hp->p++; /* Python 2 longs */
        if (a->rank == ENN_ARRAY_MAX_RANK)
            return enn_error(ENN_ERROR_FORMAT, "%s: the array has more than %d dimensions", hp->path, ENN_ARRAY_MAX_RANK);
        a->shape[a->rank++] = v;
        skip_space(hp);
        if (hp->p < hp->end && *hp->p == ',') hp->p++;
        else if (!(hp->p < hp->end && *hp->p == ')')) return bad_header(hp, "'shape' tuple is not closed");
    }
}

static enn_status parse_descr(const char *path, const char *descr, enn_dtype *type, int *big_endian)
{
    static const struct { const char *code; enn_dtype type; } known[] = {
        {"f4", ENN_DTYPE_F32}, {"f8", ENN_DTYPE_F64}, {"i4", ENN_DTYPE_I32},
        {"i8", ENN_DTYPE_I64}, {"u1", ENN_DTYPE_U8},  {"u4", ENN_DTYPE_U32},
    };
    char order = descr[0];
    if (order == '<' || order == '>' || order == '|' || order == '=') {
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(descr + 1, known[i].code) == 0) {
                *type = known[i].type;
                *big_endian = order == '>' || (order == '=' && !enn_host_is_little_endian());
                return ENN_OK;
            }
    }
    return enn_error(ENN_ERROR_FORMAT,
                     "%s: dtype '%s' is not supported (supported: <f4 <f8 <i4 <i8 |u1 <u4, either byte order)",
                     path, descr);
}

/* ---------------------------------------------------------------- reading */
static enn_status parse_npy(const char *path, uint8_t *buf, size_t size, enn_array *a, size_t *data_offset,
                            int *big_endian)
{
    if (size == 0) return enn_error(ENN_ERROR_FORMAT, "%s: empty file (want a .npy array)", path);
    if (size >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0)
        return enn_error(ENN_ERROR_FORMAT, "%s: wrong format: this is a .npz (a zip of .npy arrays, numpy's savez); "
                         "read its arrays with enn_npz_read (Keras's mnist.npz: --data mnist-npz)", path);
    if (size < 6 || memcmp(buf, NPY_MAGIC, 6) != 0)
        return enn_error(ENN_ERROR_FORMAT, "%s: not a .npy file: wrong magic (want \\x93NUMPY, found %02x %02x %02x %02x %02x %02x)",
                         path, size > 0 ? buf[0] : 0, size > 1 ? buf[1] : 0, size > 2 ? buf[2] : 0,
                         size > 3 ? buf[3] : 0, size > 4 ? buf[4] : 0, size > 5 ? buf[5] : 0);
    if (size < 8) return enn_error(ENN_ERROR_FORMAT, "%s: truncated: the file ends inside the .npy preamble (%zu bytes)", path, size);
    unsigned major = buf[6], minor = buf[7];
    size_t len_bytes = major == 1 ? 2 : (major == 2 || major == 3) ? 4 : 0;
    if (!len_bytes)
        return enn_error(ENN_ERROR_FORMAT, "%s: unsupported .npy format version %u.%u (want 1.0, 2.0 or 3.0)", path, major, minor);
    if (size < 8 + len_bytes)
        return enn_error(ENN_ERROR_FORMAT, "%s: truncated: the file ends inside the .npy preamble (%zu bytes)", path, size);
    size_t header_len = buf[8] | (size_t)buf[9] << 8;
    if (len_bytes == 4) header_len |= (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    size_t start = 8 + len_bytes;
    if (header_len > size - start)
        return enn_error(ENN_ERROR_FORMAT, "%s: truncated: the .npy header claims %zu bytes but the file holds %zu after the preamble",
                         path, header_len, size - start);

    header_parser hp = {(const char *)buf + start, (const char *)buf + start + header_len, (const char *)buf + start, path};
    char descr[64] = "", key[64];
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    if (!expect(&hp, '{')) return bad_header(&hp, "it does not start with '{'");
    for (;;) {
        if (expect(&hp, '}')) break;
        if (!parse_string(&hp, key, sizeof key)) return bad_header(&hp, "expected a quoted key");
        if (!expect(&hp, ':')) return bad_header(&hp, "expected ':' after a key");
        int *seen = !strcmp(key, "descr") ? &have_descr : !strcmp(key, "fortran_order") ? &have_order
                    : !strcmp(key, "shape")  ? &have_shape : NULL;
        if (seen && *seen) return enn_error(ENN_ERROR_FORMAT, "%s: malformed .npy header: '%s' given twice", path, key);
        if (strcmp(key, "descr") == 0) {
            if (!parse_string(&hp, descr, sizeof descr))
                return hp.p < hp.end && (*hp.p == '[' || *hp.p == '(')
                           ? enn_error(ENN_ERROR_FORMAT, "%s: 'descr' is a structured dtype (not supported)", path)
                           : bad_header(&hp, "'descr' is not a closed dtype string");
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (parse_word(&hp, "True")) fortran = 1;
            else if (parse_word(&hp, "False")) fortran = 0;
            else return bad_header(&hp, "'fortran_order' is neither True nor False");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            ENN_TRY(parse_shape(&hp, a));
            have_shape = 1;
        } else {
            return enn_error(ENN_ERROR_FORMAT, "%s: malformed .npy header: unexpected key '%s'", path, key);
        }
        if (expect(&hp, ',')) continue;
        if (expect(&hp, '}')) break;
        return bad_header(&hp, "expected ',' or '}' after a value");
    }
    if (!have_descr || !have_order || !have_shape)
        return enn_error(ENN_ERROR_FORMAT, "%s: malformed .npy header: missing '%s'", path,
                         !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    if (fortran)
        return enn_error(ENN_ERROR_FORMAT,
                         "%s: fortran_order is True (column-major data) and only C order is supported; "
                         "save it with np.save(path, np.ascontiguousarray(a))", path);
    ENN_TRY(parse_descr(path, descr, &a->dtype, big_endian));

    size_t count = 1, bytes;
    for (uint32_t i = 0; i < a->rank; i++)
        if (!enn_mul_size(count, (size_t)a->shape[i], &count) || a->shape[i] > SIZE_MAX)
            return enn_error(ENN_ERROR_FORMAT, "%s: shape is too large to address", path);
    if (!enn_mul_size(count, enn_dtype_size(a->dtype), &bytes))
        return enn_error(ENN_ERROR_FORMAT, "%s: shape is too large to address", path);
    size_t held = size - start - header_len;
    char shape[512];
    enn_format_shape(a, shape, sizeof shape);
    if (held < bytes)
        return enn_error(ENN_ERROR_FORMAT, "%s: truncated: header says shape %s of %s (%zu bytes of data) but the file holds %zu",
                         path, shape, descr, bytes, held);
    if (held > bytes)
        return enn_error(ENN_ERROR_FORMAT, "%s: %zu trailing bytes after the %zu bytes of data that shape %s of %s takes",
                         path, held - bytes, bytes, shape, descr);
    *data_offset = start + header_len;
    return ENN_OK;
}

enn_status enn_npy_from_bytes(const char *path, uint8_t *buf, size_t size, enn_dtype want, enn_array *out)
{
    memset(out, 0, sizeof *out);
    enn_array a = {0};
    size_t offset = 0;
    int big = 0;
    enn_status s = parse_npy(path, buf, size, &a, &offset, &big);
    if (s != ENN_OK) {
        free(buf);
        return s;
    }
    size_t bytes = size - offset;
    memmove(buf, buf + offset, bytes);
    uint8_t *shrunk = bytes ? realloc(buf, bytes) : NULL;
    if (!bytes) free(buf);
    a.data = shrunk ? shrunk : (bytes ? buf : NULL);
    size_t esize = enn_dtype_size(a.dtype);
    if (big == enn_host_is_little_endian() && esize > 1) enn_byteswap(a.data, bytes / esize, esize);
    if (want == ENN_DTYPE_F32) {
        s = enn_array_to_f32(&a, path);
        if (s != ENN_OK) {
            enn_array_free(&a);
            return s;
        }
    } else if (want != ENN_DTYPE_ANY && want != a.dtype) {
        enn_dtype held = a.dtype;
        enn_array_free(&a);
        return enn_error(ENN_ERROR_FORMAT, "%s: holds %s data, but %s was asked for", path, enn_dtype_name(held),
                         enn_dtype_name(want));
    }
    *out = a;
    enn_error_clear();
    return ENN_OK;
}

enn_status enn_npy_read(const char *path, enn_dtype want, enn_array *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_npy_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (want != ENN_DTYPE_ANY && enn_dtype_size(want) == 0)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: requested dtype %d is not a dtype", path ? path : "(null)", (int)want);
    uint8_t *buf;
    size_t size;
    ENN_TRY(enn_file_slurp(path, &buf, &size, NULL));
    return enn_npy_from_bytes(path, buf, size, want, out);
}

/* ---------------------------------------------------------------- writing */
enn_status enn_npy_write(const char *path, const enn_array *a)
{
    if (!path || !a) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_npy_write: path or array is NULL");
    size_t esize = enn_dtype_size(a->dtype);
    if (!esize) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: array dtype %d is not a dtype", path, (int)a->dtype);
    if (a->rank > ENN_ARRAY_MAX_RANK)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: rank %u is more than %d", path, a->rank, ENN_ARRAY_MAX_RANK);
    size_t count = 1, bytes;
    for (uint32_t i = 0; i < a->rank; i++)
        if (a->shape[i] > SIZE_MAX || !enn_mul_size(count, (size_t)a->shape[i], &count))
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: shape too large", path);
    if (!enn_mul_size(count, esize, &bytes)) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: shape too large", path);
    if (bytes && !a->data) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: array data is NULL", path);

    /* numpy's layout: dict, spaces, '\n', the whole preamble a multiple of 64 bytes. */
    char shape[ENN_ARRAY_MAX_RANK * 24 + 8];
    enn_format_shape(a, shape, sizeof shape);
    char dict[sizeof shape + 128];
    int dict_len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                            enn_dtype_name(a->dtype), shape);
    size_t header_len = (size_t)dict_len + 1;
    int v2 = (10 + header_len + 63) / 64 * 64 - 10 > 65535; /* 1.0 stores the length in 16 bits */
    size_t preamble = v2 ? 12 : 10;
    size_t total = (preamble + header_len + 63) / 64 * 64;
    header_len = total - preamble;
    uint8_t *head = malloc(total);
    if (!head) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", path);
    memcpy(head, NPY_MAGIC, 6);
    head[6] = v2 ? 2 : 1;
    head[7] = 0;
    head[8] = (uint8_t)header_len;
    head[9] = (uint8_t)(header_len >> 8);
    if (v2) {
        head[10] = (uint8_t)(header_len >> 16);
        head[11] = (uint8_t)(header_len >> 24);
    }
    memcpy(head + preamble, dict, (size_t)dict_len);
    memset(head + preamble + dict_len, ' ', header_len - (size_t)dict_len - 1);
    head[total - 1] = '\n';

    enn_atomic_file af;
    enn_status s = enn_atomic_open(&af, path);
    if (s != ENN_OK) {
        free(head);
        return s;
    }
    s = enn_atomic_write(&af, head, total);
    free(head);
    if (s == ENN_OK && (enn_host_is_little_endian() || esize == 1)) {
        s = enn_atomic_write(&af, a->data, bytes);
    } else if (s == ENN_OK) {
        /* Big-endian host: swap a chunk at a time into little-endian. */
        uint8_t chunk[1 << 16];
        for (size_t done = 0; s == ENN_OK && done < bytes;) {
            size_t n = bytes - done < sizeof chunk ? bytes - done : sizeof chunk;
            memcpy(chunk, (const uint8_t *)a->data + done, n);
            enn_byteswap(chunk, n / esize, esize);
            s = enn_atomic_write(&af, chunk, n);
            done += n;
        }
    }
    if (s != ENN_OK) {
        enn_atomic_abort(&af);
        return s;
    }
    ENN_TRY(enn_atomic_commit(&af));
    enn_error_clear();
    return ENN_OK;
}

enn_status enn_npy_write_f32(const char *path, const float *data, uint32_t rank, const uint64_t *shape)
{
    if (rank > ENN_ARRAY_MAX_RANK)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: rank %u is more than %d", path ? path : "(null)", rank,
                         ENN_ARRAY_MAX_RANK);
    if (rank && !shape) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: shape is NULL", path ? path : "(null)");
    enn_array a = {.dtype = ENN_DTYPE_F32, .rank = rank, .data = (void *)data};
    for (uint32_t i = 0; i < rank; i++) a.shape[i] = shape[i];
    return enn_npy_write(path, &a);
}
