#include "models/layout.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "ops/view.h"

enn_status enn_layout_add(enn_layout *l, const char *name, uint32_t rows, uint32_t cols, enn_init init)
{
    if (l->count == ENN_MAX_TENSORS)
        return enn_error(ENN_ERROR_INTERNAL, "model layout: more than %d tensors", ENN_MAX_TENSORS);
    if (!rows) return enn_error(ENN_ERROR_SHAPE, "model layout: tensor %s would be empty", name);
    if (enn_layout_find(l, name)) return enn_error(ENN_ERROR_INTERNAL, "model layout: %s added twice", name);
    enn_tensor_info *t = &l->tensors[l->count++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->count = (uint64_t)rows * (cols ? cols : 1);
    t->offset = l->bytes;
    t->init = init;
    l->bytes += enn_view_round(t->count * 4);
    l->elements += t->count;
    return ENN_OK;
}

const enn_tensor_info *enn_layout_find(const enn_layout *l, const char *name)
{
    for (uint32_t i = 0; i < l->count; i++)
        if (!strcmp(l->tensors[i].name, name)) return &l->tensors[i];
    return NULL;
}
