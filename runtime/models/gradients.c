/* Gradient exchange: a training step cut in two around the gradients, for data-parallel
 * training and gradient accumulation (include/enn.h):
 *
 *   enn_model_compute_gradients   forward, loss, backward into m->grads (model.c)
 *   enn_model_read_gradients      m->grads, packed: the tensors back to back
 *   (the caller combines them with other models' or micro-batches')
 *   enn_model_write_gradients     the combined gradients back into m->grads
 *   enn_model_apply_gradients     clipping and Adam (enn_model_record_update), one submission
 *
 * m->grads is the layout's flat buffer, each tensor at its offset with padding between
 * tensors (enn_layout_add); the packed array leaves the padding out. */
#include <string.h>

#include "core/error.h"
#include "models/model.h"

uint64_t enn_model_gradient_count(const enn_model *m) { return m ? m->layout.elements : 0; }

static enn_status check_packed(const enn_model *m, const void *array, size_t count, const char *op)
{
    if (!m || !array) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: NULL argument", op);
    if (count != m->layout.elements)
        return enn_error(ENN_ERROR_SHAPE, "%s: the model has %llu gradient floats, not %zu", op,
                         (unsigned long long)m->layout.elements, count);
    return ENN_OK;
}

enn_status enn_model_read_gradients(enn_model *m, float *dst, size_t count)
{
    ENN_TRY(check_packed(m, dst, count, "enn_model_read_gradients"));
    float *flat = enn_model_host_floats(m, m->layout.bytes / 4);
    if (!flat) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "enn_model_read_gradients: staging");
    ENN_TRY(enn_buffer_download(m->ctx, m->grads, 0, flat, m->layout.bytes));
    for (uint32_t i = 0; i < m->layout.count; i++) {
        const enn_tensor_info *t = &m->layout.tensors[i];
        memcpy(dst, flat + t->offset / 4, t->count * sizeof *dst);
        dst += t->count;
    }
    return ENN_OK;
}

enn_status enn_model_write_gradients(enn_model *m, const float *src, size_t count)
{
    ENN_TRY(check_packed(m, src, count, "enn_model_write_gradients"));
    float *flat = enn_model_host_floats(m, m->layout.bytes / 4);
    if (!flat) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "enn_model_write_gradients: staging");
    memset(flat, 0, m->layout.bytes);   /* the padding between tensors stays zero */
    for (uint32_t i = 0; i < m->layout.count; i++) {
        const enn_tensor_info *t = &m->layout.tensors[i];
        memcpy(flat + t->offset / 4, src, t->count * sizeof *src);
        src += t->count;
    }
    ENN_TRY(enn_buffer_upload(m->ctx, m->grads, 0, flat, m->layout.bytes));
    m->gradients_pending = 1;
    return ENN_OK;
}

enn_status enn_model_apply_gradients(enn_model *m)
{
    if (!m) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_apply_gradients: model is NULL");
    if (!m->gradients_pending)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_model_apply_gradients: no gradients since the last update "
                                                     "(call enn_model_compute_gradients or enn_model_write_gradients)");
    enn_recorder *rec = m->rec;
    ENN_TRY(enn_recorder_begin(rec));
    enn_status s = enn_model_record_update(m, rec);
    if (s == ENN_OK) s = enn_recorder_run(rec);
    if (s != ENN_OK) {
        enn_recorder_abort(rec);
        return s;
    }
    m->step++;
    m->gradients_pending = 0;
    return ENN_OK;
}
