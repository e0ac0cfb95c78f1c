/* Internals of the token-text loader, shared by text.c, words.c and vocab.c. */
#ifndef ENN_DATA_TEXT_H
#define ENN_DATA_TEXT_H

#include <stdint.h>
#include <zlib.h>

#include "core/error.h"
#include "enn_data.h"

/* Lines of a plain or gzip text file, read in large chunks. A NUL byte, which no text
 * file holds, is reported as "not a text file". */
typedef struct enn_line_reader {
    gzFile gz;
    const char *path;
    char *buf;
    size_t cap, start, end;
    int eof;
    size_t line_no;   /* of the line last returned, from 1 */
    uint64_t bytes;   /* read so far */
} enn_line_reader;

enn_status enn_line_reader_open(enn_line_reader *lr, const char *path);
/* *line is NUL-terminated, without its end: "\n", "\r\n" or a lone "\r" (Python's universal
 * newlines); *more is 0 at the end. */
enn_status enn_line_reader_next(enn_line_reader *lr, char **line, size_t *len, int *more);
void enn_line_reader_close(enn_line_reader *lr);

/* A string -> uint64 hash map (open addressing, FNV-1a). Keys are copied. Key, hash
 * and value sit together: one cache line per probe on vocabularies of 10^5+ words. */
typedef struct enn_str_entry {
    char *key; /* NULL: empty slot */
    uint64_t hash;
    uint64_t value;
} enn_str_entry;
typedef struct enn_str_map {
    enn_str_entry *slots;
    size_t cap, count;
} enn_str_map;
uint64_t enn_str_hash(const char *s, size_t len);
/* Index of the slot holding key, or of the empty slot where it would go. */
size_t enn_str_map_slot(const enn_str_map *m, const char *key, size_t len, uint64_t hash);
/* Returns the slot of key, inserting it with value `init` if absent; SIZE_MAX when out
 * of memory. Slots move when the map grows, so use the result at once. */
size_t enn_str_map_upsert(enn_str_map *m, const char *key, size_t len, uint64_t init);
void enn_str_map_free(enn_str_map *m);

/* Whether line `index` is among the kept fraction for this seed. */
int enn_text_keep_line(const enn_text_options *opt, size_t index);
/* Checks fraction; fills defaults. */
enn_status enn_text_options_resolve(const enn_text_options *in, enn_text_options *out, const char *path);

typedef enn_status (*enn_text_token_fn)(void *user, char *word, size_t n, size_t line_no);
/* Calls token(user, word, n, line_no) for every word of one line (line[len] is its NUL), in
 * order: Python's line.lower().split(), or line.split() when keep_case (words.c). The line
 * is UTF-8; a byte that is not passes through as it is and is never a space. word is
 * NUL-terminated for the call, and may point into line (changed in place) or elsewhere.
 * Stops at the first status other than ENN_OK; `where` (a path) names the text in errors. */
enn_status enn_text_for_each_word(char *line, size_t len, int keep_case, enn_text_token_fn token, void *user,
                                  const char *where, size_t line_no);
/* The first whitespace character (Python's str.isspace()) of the UTF-8 s[0..n), or NULL. */
const char *enn_text_find_space(const char *s, size_t n);

/* Calls token(user, word, n, line_no) for every whitespace-separated word of the kept
 * lines of path, in order (lower-cased unless opt->keep_case); word is NUL-terminated
 * for the call. Stops at the first status token returns other than ENN_OK. *bytes: the
 * file's size as read, 0 for an empty file. */
enn_status enn_text_for_each_token(const char *path, const enn_text_options *opt, enn_text_token_fn token,
                                   void *user, uint64_t *bytes);

#endif
