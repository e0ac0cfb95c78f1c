/* Token text: line reading, lower-casing, line selection, and spans of T tokens. */
#include "data/text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/file.h"

/* ---------------------------------------------------------------- line reader */
enn_status enn_line_reader_open(enn_line_reader *lr, const char *path)
{
    memset(lr, 0, sizeof *lr);
    if (!path) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "text file path is NULL");
    lr->path = path;
    lr->gz = gzopen(path, "rb");
    if (!lr->gz) return enn_error(ENN_ERROR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(lr->gz, 1 << 17);
    return ENN_OK;
}

void enn_line_reader_close(enn_line_reader *lr)
{
    if (lr->gz) gzclose(lr->gz);
    free(lr->buf);
    memset(lr, 0, sizeof *lr);
}

static enn_status fill(enn_line_reader *lr)
{
    if (lr->start > 0) { /* keep the partial line at the front */
        memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
        lr->end -= lr->start;
        lr->start = 0;
    }
    if (lr->cap - lr->end < (1 << 16)) {
        size_t next = lr->cap ? lr->cap * 2 : (size_t)1 << 20;
        char *grown = realloc(lr->buf, next + 1); /* +1 for a NUL after the last line */
        if (!grown) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory (a line of %zu bytes)", lr->path, lr->end);
        lr->buf = grown;
        lr->cap = next;
    }
    size_t want = lr->cap - lr->end;
    if (want > (1u << 30)) want = 1u << 30;
    int got = gzread(lr->gz, lr->buf + lr->end, (unsigned)want);
    if (got <= 0) {
        int errnum = Z_OK;
        const char *msg = gzerror(lr->gz, &errnum);
        if (got == 0 && errnum == Z_OK) {
            lr->eof = 1;
            return ENN_OK;
        }
        if (errnum == Z_ERRNO) return enn_error(ENN_ERROR_IO, "%s: read failed: %s", lr->path, strerror(errno));
        if (errnum == Z_BUF_ERROR)
            return enn_error(ENN_ERROR_FORMAT, "%s: truncated gzip stream: the compressed file ends early (after %llu "
                             "uncompressed bytes)", lr->path, (unsigned long long)lr->bytes);
        return enn_error(ENN_ERROR_FORMAT, "%s: corrupt gzip data: %s (after %llu uncompressed bytes)", lr->path,
                         msg ? msg : "unknown zlib error", (unsigned long long)lr->bytes);
    }
    const char *nul = memchr(lr->buf + lr->end, 0, (size_t)got);
    if (nul)
        return enn_error(ENN_ERROR_FORMAT, "%s: not a text file: NUL byte at offset %llu", lr->path,
                         (unsigned long long)(lr->bytes + (uint64_t)(nul - (lr->buf + lr->end))));
    lr->end += (size_t)got;
    lr->bytes += (uint64_t)got;
    return ENN_OK;
}

/* Lines end as in Python's universal newlines: at "\n", "\r\n" or a lone "\r". A '\r' that
 * ends the bytes read so far waits for the next read to tell the last two apart. */
enn_status enn_line_reader_next(enn_line_reader *lr, char **line, size_t *len, int *more)
{
    for (;;) {
        char *s = lr->buf + lr->start, *avail_end = lr->buf + lr->end;
        size_t avail = lr->end - lr->start;
        char *nl = avail ? memchr(s, '\n', avail) : NULL;
        char *cr = avail ? memchr(s, '\r', nl ? (size_t)(nl - s) : avail) : NULL;
        char *e = NULL, *next = NULL;
        if (cr && (cr + 1 < avail_end || lr->eof)) {
            e = cr;
            next = cr + 1 < avail_end && cr[1] == '\n' ? cr + 2 : cr + 1;
        } else if (!cr && nl) {
            e = nl;
            next = nl + 1;
        } else if (!cr && lr->eof && avail) {
            e = next = avail_end;
        }
        if (e) {
            lr->start = (size_t)(next - lr->buf);
            if (lr->line_no == 0) s += enn_utf8_bom(s, (size_t)(e - s));
            *e = '\0';
            *line = s;
            *len = (size_t)(e - s);
            *more = 1;
            lr->line_no++;
            return ENN_OK;
        }
        if (lr->eof) {
            *more = 0;
            return ENN_OK;
        }
        ENN_TRY(fill(lr));
    }
}

/* ---------------------------------------------------------------- string map */
uint64_t enn_str_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

size_t enn_str_map_slot(const enn_str_map *m, const char *key, size_t len, uint64_t hash)
{
    size_t mask = m->cap - 1, i = (size_t)hash & mask;
    for (;; i = (i + 1) & mask) {
        const enn_str_entry *e = &m->slots[i];
        if (!e->key || (e->hash == hash && strncmp(e->key, key, len) == 0 && e->key[len] == '\0')) return i;
    }
}

static int grow(enn_str_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    enn_str_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) return 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) {
            size_t j = (size_t)m->slots[i].hash & (cap - 1);
            while (slots[j].key) j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 1;
}

size_t enn_str_map_upsert(enn_str_map *m, const char *key, size_t len, uint64_t init)
{
    if ((m->count + 1) * 2 > m->cap && !grow(m)) return SIZE_MAX;
    uint64_t h = enn_str_hash(key, len);
    size_t i = enn_str_map_slot(m, key, len, h);
    if (!m->slots[i].key) {
        char *copy = malloc(len + 1);
        if (!copy) return SIZE_MAX;
        memcpy(copy, key, len);
        copy[len] = '\0';
        m->slots[i] = (enn_str_entry){copy, h, init};
        m->count++;
    }
    return i;
}

void enn_str_map_free(enn_str_map *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- options */
enn_status enn_text_options_resolve(const enn_text_options *in, enn_text_options *out, const char *path)
{
    *out = in ? *in : (enn_text_options){0};
    if (!(out->fraction >= 0.0 && out->fraction <= 1.0))
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: line fraction %g is not in [0, 1]", path ? path : "(null)", out->fraction);
    if (out->fraction == 0.0) out->fraction = 1.0;
    if (out->min_count == 0) out->min_count = 1;
    if (out->max_size == 1 || out->max_size == 2)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: vocabulary max_size %u leaves no room beyond <pad> and <unk>",
                         path ? path : "(null)", out->max_size);
    return ENN_OK;
}

int enn_text_keep_line(const enn_text_options *opt, size_t index)
{
    if (opt->fraction >= 1.0) return 1;
    uint64_t state = opt->seed ^ ((uint64_t)index * 0xd1b54a32d192ed03ull);
    uint64_t r = enn_splitmix64(&state);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0) < opt->fraction;
}

enn_status enn_text_for_each_token(const char *path, const enn_text_options *opt, enn_text_token_fn token,
                                   void *user, uint64_t *bytes)
{
    enn_line_reader lr;
    ENN_TRY(enn_line_reader_open(&lr, path));
    enn_status s = ENN_OK;
    char *line;
    size_t len;
    int more;
    while (s == ENN_OK && (s = enn_line_reader_next(&lr, &line, &len, &more)) == ENN_OK && more) {
        if (!enn_text_keep_line(opt, lr.line_no - 1)) continue;
        s = enn_text_for_each_word(line, len, opt->keep_case, token, user, path, lr.line_no);
    }
    *bytes = lr.bytes;
    enn_line_reader_close(&lr);
    return s;
}

/* ---------------------------------------------------------------- spans */
/* The token ids of a file, in order, grown by doubling. */
typedef struct token_stream {
    const enn_vocab *vocab;
    const char *path;
    uint32_t *ids;
    size_t count, cap;
} token_stream;

static enn_status append_token(void *user, char *word, size_t n, size_t line_no)
{
    (void)n;
    token_stream *ts = user;
    if (ts->count == ts->cap) {
        size_t next = ts->cap ? ts->cap * 2 : 1 << 16;
        uint32_t *grown = realloc(ts->ids, next * sizeof(uint32_t));
        if (!grown) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory at line %zu", ts->path, line_no);
        ts->ids = grown;
        ts->cap = next;
    }
    ts->ids[ts->count++] = enn_vocab_id(ts->vocab, word);
    return ENN_OK;
}

enn_status enn_load_tokens(const char *path, const enn_vocab *vocab, const enn_text_options *text_options,
                           const enn_span_options *span_options, enn_dataset *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_load_tokens: out is NULL");
    memset(out, 0, sizeof *out);
    if (!vocab) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: enn_load_tokens needs a vocabulary", path ? path : "(null)");
    if (!span_options || span_options->T == 0 || span_options->T > ENN_MAX_DIMENSION)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: span length T = %u is not within 1..%u", path ? path : "(null)",
                         span_options ? span_options->T : 0, ENN_MAX_DIMENSION);
    enn_text_options opt;
    ENN_TRY(enn_text_options_resolve(text_options, &opt, path));
    const size_t T = span_options->T;

    token_stream ts = {.vocab = vocab, .path = path};
    uint64_t bytes = 0;
    enn_status s = enn_text_for_each_token(path, &opt, append_token, &ts, &bytes);
    uint32_t *stream = ts.ids;
    size_t count = ts.count, cap = ts.cap;
    if (s == ENN_OK && bytes == 0) s = enn_error(ENN_ERROR_FORMAT, "%s: empty file (want whitespace-separated tokens)", path);
    else if (s == ENN_OK && count == 0)
        s = enn_error(ENN_ERROR_FORMAT, "%s: no tokens%s", path, opt.fraction < 1.0 ? " in the selected lines" : "");
    size_t n = span_options->drop_partial ? count / T : (count + T - 1) / T;
    if (s == ENN_OK && n == 0)
        s = enn_error(ENN_ERROR_FORMAT, "%s: %zu tokens, fewer than one span of T = %zu", path, count, T);
    /* The stream itself becomes the tokens array (padded with 0 to whole spans): WikiText-103
     * holds 10^8 tokens, and a copy would cost 400 MB more. */
    size_t total = n * T;
    if (s == ENN_OK && total > cap) {
        uint32_t *grown = realloc(stream, total * sizeof(uint32_t));
        if (!grown) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory for %zu spans", path, n);
        else stream = grown, cap = total;
    }
    if (s == ENN_OK && !(out->targets = malloc(total * sizeof(uint32_t))))
        s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory for %zu spans", path, n);
    if (s != ENN_OK) {
        free(stream);
        return s;
    }
    for (size_t i = count; i < total; i++) stream[i] = 0; /* pad the last span */
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < T; t++) {
            size_t at = i * T + t;
            uint32_t next;
            if (t + 1 < T) next = stream[at + 1];
            else next = span_options->carry_last_target && at + 1 < count ? stream[at + 1] : 0; /* paper: pad */
            out->targets[at] = next;
        }
    uint32_t *tokens = total < cap ? realloc(stream, total * sizeof(uint32_t)) : stream; /* drop the tail */
    out->tokens = tokens ? tokens : stream;
    out->n = n;
    out->T = (uint32_t)T;
    out->d = 0;
    out->vocab_size = enn_vocab_size(vocab);
    enn_error_clear();
    return ENN_OK;
}
