/* The vocabulary of a token-text training split: ids 0 = <pad>, 1 = <unk>, then tokens
 * by falling count (ties in byte order), saved one token per line. */
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "data/file.h"
#include "data/text.h"

struct enn_vocab {
    uint32_t size;
    char **tokens;     /* [size]; tokens[0] = "<pad>", tokens[1] = "<unk>" */
    uint64_t *counts;  /* [size]; 0 after a load */
    enn_str_map ids;       /* token -> id, for ids >= 1 */
};

static const char PAD[] = "<pad>", UNK[] = "<unk>";

void enn_vocab_free(enn_vocab *v)
{
    if (!v) return;
    if (v->tokens)
        for (uint32_t i = 0; i < v->size; i++) free(v->tokens[i]);
    free(v->tokens);
    free(v->counts);
    enn_str_map_free(&v->ids);
    free(v);
}

uint32_t enn_vocab_size(const enn_vocab *v) { return v ? v->size : 0; }

const char *enn_vocab_token(const enn_vocab *v, uint32_t id) { return v && id < v->size ? v->tokens[id] : NULL; }

uint64_t enn_vocab_count(const enn_vocab *v, uint32_t id) { return v && id < v->size ? v->counts[id] : 0; }

uint32_t enn_vocab_id(const enn_vocab *v, const char *token)
{
    if (!v || !token || !v->ids.cap) return 1;
    size_t len = strlen(token);
    size_t slot = enn_str_map_slot(&v->ids, token, len, enn_str_hash(token, len));
    return v->ids.slots[slot].key ? (uint32_t)v->ids.slots[slot].value : 1;
}

typedef struct encoding {
    const enn_vocab *vocab;
    uint32_t *ids;
    size_t capacity, count;
} encoding;

static enn_status encode_word(void *user, char *word, size_t n, size_t line_no)
{
    (void)n;
    (void)line_no;
    encoding *e = user;
    if (e->count < e->capacity) e->ids[e->count] = enn_vocab_id(e->vocab, word);
    e->count++;
    return ENN_OK;
}

enn_status enn_vocab_encode(const enn_vocab *v, const char *text, int keep_case, uint32_t *ids, size_t capacity,
                            size_t *count)
{
    if (!v || !text || !count || (capacity && !ids))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_vocab_encode: NULL argument");
    size_t len = strlen(text);
    char *copy = malloc(len + 1);   /* lower-cased in place */
    if (!copy) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "enn_vocab_encode: %zu bytes of text", len);
    memcpy(copy, text, len + 1);
    encoding e = {v, ids, capacity, 0};
    enn_status s = enn_text_for_each_word(copy, len, keep_case, encode_word, &e, "enn_vocab_encode", 1);
    free(copy);
    *count = e.count;
    return s;
}

/* An empty vocabulary with room for `size` ids (tokens to be filled in). */
static enn_vocab *vocab_new(uint32_t size)
{
    enn_vocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->tokens = calloc(size, sizeof(char *));
    v->counts = calloc(size, sizeof(uint64_t));
    if (!v->tokens || !v->counts) {
        enn_vocab_free(v);
        return NULL;
    }
    v->size = size;
    return v;
}

/* Sets id's token and indexes it; returns 0 when out of memory, -1 when already present. */
static int vocab_set(enn_vocab *v, uint32_t id, const char *token, size_t len)
{
    v->tokens[id] = malloc(len + 1);
    if (!v->tokens[id]) return 0;
    memcpy(v->tokens[id], token, len);
    v->tokens[id][len] = '\0';
    if (id == 0) return 1; /* <pad> is never looked up: a literal "<pad>" in text is <unk> */
    size_t before = v->ids.count;
    size_t slot = enn_str_map_upsert(&v->ids, token, len, id);
    if (slot == SIZE_MAX) return 0;
    return v->ids.count == before ? -1 : 1;
}

typedef struct counted { const char *token; uint64_t count; } counted;

static int by_count_then_bytes(const void *a, const void *b)
{
    const counted *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->token, y->token);
}

/* How often each word occurs; <unk> and <pad> in the text count as unknown. */
typedef struct token_counts {
    const char *path;
    enn_str_map counts;
    uint64_t unknown, total;
} token_counts;

static enn_status count_token(void *user, char *word, size_t n, size_t line_no)
{
    token_counts *tc = user;
    tc->total++;
    if ((n == 5 && memcmp(word, UNK, 5) == 0) || (n == 5 && memcmp(word, PAD, 5) == 0)) {
        tc->unknown++;
        return ENN_OK;
    }
    size_t slot = enn_str_map_upsert(&tc->counts, word, n, 0);
    if (slot == SIZE_MAX) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory at line %zu", tc->path, line_no);
    tc->counts.slots[slot].value++;
    return ENN_OK;
}

enn_status enn_vocab_build(const char *train_path, const enn_text_options *options, enn_vocab **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_vocab_build: out is NULL");
    *out = NULL;
    enn_text_options opt;
    ENN_TRY(enn_text_options_resolve(options, &opt, train_path));
    token_counts tc = {.path = train_path};
    uint64_t bytes = 0;
    enn_status s = enn_text_for_each_token(train_path, &opt, count_token, &tc, &bytes);
    enn_str_map counts = tc.counts;
    uint64_t unknown = tc.unknown, total = tc.total;
    if (s == ENN_OK && bytes == 0) s = enn_error(ENN_ERROR_FORMAT, "%s: empty file (want whitespace-separated tokens)", train_path);
    else if (s == ENN_OK && total == 0)
        s = enn_error(ENN_ERROR_FORMAT, "%s: no tokens%s", train_path, opt.fraction < 1.0 ? " in the selected lines" : "");
    counted *list = NULL;
    size_t kept = 0;
    if (s == ENN_OK) {
        list = malloc((counts.count ? counts.count : 1) * sizeof *list);
        if (!list) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", train_path);
    }
    if (s == ENN_OK) {
        for (size_t i = 0; i < counts.cap; i++)
            if (counts.slots[i].key) {
                const enn_str_entry *e = &counts.slots[i];
                if (e->value >= opt.min_count) list[kept++] = (counted){e->key, e->value};
                else unknown += e->value;
            }
        qsort(list, kept, sizeof *list, by_count_then_bytes);
        size_t room = opt.max_size ? (size_t)opt.max_size - 2 : SIZE_MAX;
        for (size_t i = room; i < kept; i++) unknown += list[i].count;
        if (kept > room) kept = room;
        if (kept > UINT32_MAX - 2) s = enn_error(ENN_ERROR_FORMAT, "%s: more than 2^32 distinct tokens", train_path);
    }
    enn_vocab *v = s == ENN_OK ? vocab_new((uint32_t)kept + 2) : NULL;
    if (s == ENN_OK && !v) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", train_path);
    if (s == ENN_OK) {
        int ok = vocab_set(v, 0, PAD, 5) == 1 && vocab_set(v, 1, UNK, 5) == 1;
        v->counts[1] = unknown;
        for (size_t i = 0; ok && i < kept; i++) {
            ok = vocab_set(v, (uint32_t)i + 2, list[i].token, strlen(list[i].token)) == 1;
            v->counts[i + 2] = list[i].count;
        }
        if (!ok) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", train_path);
    }
    free(list);
    enn_str_map_free(&counts);
    if (s != ENN_OK) {
        enn_vocab_free(v);
        return s;
    }
    *out = v;
    enn_error_clear();
    return ENN_OK;
}

enn_status enn_vocab_save(const enn_vocab *v, const char *path)
{
    if (!v) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: vocabulary is NULL", path ? path : "(null)");
    enn_atomic_file af;
    ENN_TRY(enn_atomic_open(&af, path));
    enn_status s = ENN_OK;
    for (uint32_t i = 0; s == ENN_OK && i < v->size; i++) {
        s = enn_atomic_write(&af, v->tokens[i], strlen(v->tokens[i]));
        if (s == ENN_OK) s = enn_atomic_write(&af, "\n", 1);
    }
    if (s != ENN_OK) {
        enn_atomic_abort(&af);
        return s;
    }
    ENN_TRY(enn_atomic_commit(&af));
    enn_error_clear();
    return ENN_OK;
}

enn_status enn_vocab_load(const char *path, enn_vocab **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_vocab_load: out is NULL");
    *out = NULL;
    uint8_t *buf;
    size_t size;
    ENN_TRY(enn_file_slurp(path, &buf, &size, NULL));
    enn_status s = ENN_OK;
    enn_vocab *v = NULL;
    size_t lines = 0;
    for (size_t i = 0; i < size; i++) lines += buf[i] == '\n';
    if (size && buf[size - 1] != '\n') lines++;
    if (size == 0) s = enn_error(ENN_ERROR_FORMAT, "%s: empty file (want a vocabulary, one token per line)", path);
    else if (memchr(buf, 0, size)) s = enn_error(ENN_ERROR_FORMAT, "%s: not a vocabulary file: it holds a NUL byte", path);
    else if (lines > UINT32_MAX) s = enn_error(ENN_ERROR_FORMAT, "%s: more than 2^32 lines", path);
    else if (!(v = vocab_new((uint32_t)lines))) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", path);
    const char *text = (const char *)buf;
    for (size_t pos = enn_utf8_bom(buf, size), id = 0; s == ENN_OK && pos < size; id++) {
        const char *ls = text + pos, *le = memchr(ls, '\n', size - pos);
        if (!le) le = text + size;
        pos = (size_t)(le - text) + 1;
        if (le > ls && le[-1] == '\r') le--;
        size_t len = (size_t)(le - ls);
        const char *want = id == 0 ? PAD : id == 1 ? UNK : NULL;
        if (want && (len != 5 || memcmp(ls, want, 5) != 0)) {
            s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: wrong magic: line %zu must be \"%s\" (ids 0 and 1 are <pad> and <unk>)",
                          path, id + 1, id + 1, want);
            break;
        }
        if (len == 0) {
            s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: empty line (every line holds one token)", path, id + 1);
            break;
        }
        const char *space = enn_text_find_space(ls, len);
        if (space && strchr(" \t\n\v\f\r", *space)) {
            s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: token holds whitespace (one token per line)", path, id + 1);
            break;
        }
        if (space) {
            /* Only a libenn from before words were split at every Unicode space (as
             * Python's str.split() does) wrote such a token. */
            ucs4_t c;
            u8_mbtouc(&c, (const uint8_t *)space, (size_t)(ls + len - space));
            s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: token holds U+%04X, a space where words are split as Python's "
                          "str.split() does: a vocabulary built by an earlier libenn, which split at ASCII whitespace only "
                          "(build it again with enn train)", path, id + 1, (unsigned)c);
            break;
        }
        int r = vocab_set(v, (uint32_t)id, ls, len);
        if (r == 0) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", path);
        if (r == -1)
            s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: token '%.*s' repeats line %u", path, id + 1, (int)(len > 60 ? 60 : len),
                          ls, enn_vocab_id(v, v->tokens[id]) + 1);
    }
    if (s == ENN_OK && lines < 2)
        s = enn_error(ENN_ERROR_FORMAT, "%s: truncated: %zu line(s), but a vocabulary starts with <pad> and <unk>", path, lines);
    free(buf);
    if (s != ENN_OK) {
        enn_vocab_free(v);
        return s;
    }
    *out = v;
    enn_error_clear();
    return ENN_OK;
}
