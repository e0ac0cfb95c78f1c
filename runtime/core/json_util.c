#include "core/json_util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct dump_buffer {
    char *text;
    size_t length, capacity;
    int failed;   /* sticky: jansson may carry on after a write we refused */
} dump_buffer;

static int dump_append(const char *bytes, size_t n, void *data)
{
    dump_buffer *b = data;
    if (b->failed) return -1;
    if (n >= b->capacity - b->length) {
        size_t capacity = b->capacity ? b->capacity : 256;
        while (capacity - b->length <= n) {
            if (capacity > SIZE_MAX / 2) {
                b->failed = 1;
                return -1;
            }
            capacity *= 2;
        }
        char *grown = realloc(b->text, capacity);
        if (!grown) {
            b->failed = 1;
            return -1;
        }
        b->text = grown;
        b->capacity = capacity;
    }
    memcpy(b->text + b->length, bytes, n);
    b->length += n;
    b->text[b->length] = '\0';
    return 0;
}

char *enn_json_dumps(const json_t *json, size_t flags)
{
    dump_buffer b = {0};
    if (json_dump_callback(json, dump_append, &b, flags) != 0 || b.failed || !b.text) {
        free(b.text);
        return NULL;
    }
    return b.text;
}

int enn_json_load_out_of_memory(const json_t *root, const json_error_t *err, int err_no)
{
    if (err_no == ENOMEM) return 1;
    return !root && (json_error_code(err) == json_error_out_of_memory || err->text[0] == '\0');
}
