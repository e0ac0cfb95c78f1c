/* The words of a line of token text, as Python's line.lower().split() gives them: split at
 * every character str.isspace() calls a space, lower-cased with the full Unicode mappings
 * (libunistring's, the same Unicode 14 data as Python 3.11's). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <unistr.h>

#include "data/text.h"

/* ---------------------------------------------------------------- spaces */
/* Python's str.isspace(): bidirectional class WS, B or S, or general category Zs. That puts
 * U+001C..U+001F among the spaces (Unicode's White_Space property does not) and leaves out
 * U+200B and U+FEFF. */
static int is_python_space(ucs4_t c)
{
    int bidi = uc_bidi_class(c);
    return bidi == UC_BIDI_WS || bidi == UC_BIDI_B || bidi == UC_BIDI_S || uc_is_general_category(c, UC_SPACE_SEPARATOR);
}

/* Which bytes begin the UTF-8 of some space: found once, from libunistring's tables. Any
 * other byte (a continuation byte too) is no space, with no decoding needed. */
static uint8_t starts_space[256];
static pthread_once_t starts_space_once = PTHREAD_ONCE_INIT;

static void find_starts_of_spaces(void)
{
    for (ucs4_t c = 0; c < 0x110000; c = c == 0xD7FF ? 0xE000 : c + 1)
        if (is_python_space(c)) {
            uint8_t utf8[6];
            if (u8_uctomb(utf8, c, 6) > 0) starts_space[utf8[0]] = 1;
        }
}

/* The byte length of the space at s, or -1 when s does not begin one: the caller then steps
 * one byte on (a byte inside a character, or one that is not UTF-8, begins no space). */
static inline int space_at(const uint8_t *s, size_t n)
{
    if (!starts_space[s[0]]) return -1;
    if (s[0] < 0x80) return 1;
    ucs4_t c;
    int len = u8_mbtoucr(&c, s, n);
    return len > 0 && is_python_space(c) ? len : -1;
}

const char *enn_text_find_space(const char *s, size_t n)
{
    pthread_once(&starts_space_once, find_starts_of_spaces);
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    for (; p < end; p++)
        if (space_at(p, (size_t)(end - p)) > 0) return (const char *)p;
    return NULL;
}

/* ---------------------------------------------------------------- lower-casing */
/* A buffer for lower-cased words, grown as needed and reused for the words of a line. */
typedef struct word_buffer {
    uint8_t *data;
    size_t len, cap;
} word_buffer;

static int reserve(word_buffer *b, size_t more)
{
    if (b->len + more <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) return 0;
    b->data = grown;
    b->cap = cap;
    return 1;
}

static int append(word_buffer *b, const void *bytes, size_t n)
{
    if (!reserve(b, n)) return 0;
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return 1;
}

/* Appends the lower case of the valid UTF-8 s[0..n), which holds no capital sigma (the one
 * letter whose lower case depends on its neighbours, language-independently). */
static int append_lower(word_buffer *b, const uint8_t *s, size_t n)
{
    if (n == 0) return 1;
    if (!reserve(b, n + n / 2 + 1)) return 0; /* lower case is at most 1.5x longer (U+0130, U+023A) */
    size_t got = b->cap - b->len;
    uint8_t *lower = u8_tolower(s, n, NULL, NULL, b->data + b->len, &got);
    if (!lower) return 0;
    if (lower == b->data + b->len) {
        b->len += got;
        return 1;
    }
    int ok = append(b, lower, got); /* did not fit: libunistring allocated it */
    free(lower);
    return ok;
}

/* Python's Final_Sigma rule for a capital sigma at s[at]: the final form when a cased letter
 * precedes it and none follows it, case-ignorable characters skipped both ways. prev_cased:
 * the last character before it that is not case-ignorable was cased. libunistring's
 * u8_tolower applies the rule itself but does not skip U+0027 APOSTROPHE, which Unicode's
 * Case_Ignorable (and Python) include; uc_is_property_case_ignorable does. */
static int is_final_sigma(int prev_cased, const uint8_t *s, size_t n, size_t at)
{
    if (!prev_cased) return 0;
    for (size_t i = at + 2; i < n;) {
        ucs4_t c;
        int len = u8_mbtoucr(&c, s + i, n - i);
        if (len < 0) return 1; /* a stray byte: neither cased nor ignorable */
        if (!uc_is_property_case_ignorable(c)) return !uc_is_property_cased(c);
        i += (size_t)len;
    }
    return 1;
}

/* Appends the lower case of s[0..n) character by character: capital sigmas by Python's rule,
 * bytes that are not UTF-8 as they are (what Python's errors="surrogateescape" gives). */
static int append_lower_slowly(word_buffer *b, const uint8_t *s, size_t n)
{
    static const uint8_t small_sigma[2] = {0xCF, 0x83}, final_sigma[2] = {0xCF, 0x82};
    size_t done = 0; /* s[0..done) appended */
    int prev_cased = 0;
    for (size_t i = 0; i < n;) {
        ucs4_t c;
        int len = u8_mbtoucr(&c, s + i, n - i);
        if (len < 0) {
            if (!append_lower(b, s + done, i - done) || !append(b, s + i, 1)) return 0;
            done = ++i;
            prev_cased = 0; /* a stray byte is neither cased nor case-ignorable */
            continue;
        }
        if (c == 0x3A3) {
            if (!append_lower(b, s + done, i - done)) return 0;
            if (!append(b, is_final_sigma(prev_cased, s, n, i) ? final_sigma : small_sigma, 2)) return 0;
            done = i + 2;
        }
        if (!uc_is_property_case_ignorable(c)) prev_cased = uc_is_property_cased(c);
        i += (size_t)len;
    }
    return append_lower(b, s + done, n - done);
}

static int has_capital_sigma(const uint8_t *s, size_t n)
{
    for (const uint8_t *p = s; (p = memchr(p, 0xCE, n - (size_t)(p - s))) && p + 1 < s + n; p++)
        if (p[1] == 0xA3) return 1;
    return 0;
}

/* The lower case of the non-ASCII word s[0..n), NUL-terminated, in b (from its start). */
static int lower_word(word_buffer *b, const uint8_t *s, size_t n)
{
    b->len = 0;
    int plain = !u8_check(s, n) && !has_capital_sigma(s, n); /* the common case: one call */
    if (!(plain ? append_lower(b, s, n) : append_lower_slowly(b, s, n))) return 0;
    return append(b, "", 1);
}

/* ---------------------------------------------------------------- words */
enn_status enn_text_for_each_word(char *line, size_t len, int keep_case, enn_text_token_fn token, void *user,
                                  const char *where, size_t line_no)
{
    pthread_once(&starts_space_once, find_starts_of_spaces);
    uint8_t *p = (uint8_t *)line, *end = p + len;
    word_buffer lowered = {0};
    enn_status s = ENN_OK;
    while (s == ENN_OK) {
        int space;
        while (p < end && (space = space_at(p, (size_t)(end - p))) > 0) p += space;
        if (p == end) break;
        uint8_t *q = p;
        uint8_t high = 0; /* any byte above 0x7F: a word beyond ASCII */
        for (; q < end && space_at(q, (size_t)(end - q)) < 0; q++) high |= *q;
        int ascii = high < 0x80;
        size_t n = (size_t)(q - p);
        if (keep_case || ascii) {
            if (!keep_case)
                for (uint8_t *c = p; c < q; c++) *c = (uint8_t)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
            uint8_t saved = *q; /* line[len] is a NUL, so q is inside the buffer */
            *q = '\0';
            s = token(user, (char *)p, n, line_no);
            *q = saved;
        } else if (lower_word(&lowered, p, n)) {
            s = token(user, (char *)lowered.data, lowered.len - 1, line_no);
        } else {
            s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s:%zu: out of host memory lower-casing a word of %zu bytes",
                          where, line_no, n);
        }
        p = q;
    }
    free(lowered.data);
    return s;
}
