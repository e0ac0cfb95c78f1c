/* Launchers for shaders/rnn_gates.comp: one invocation per (row, unit). */
#include "ops/rnn_gates.h"

#include "ops/launch.h"

#define LOCAL 256

typedef struct gates_push {
    uint32_t rows, units;
} gates_push;

typedef struct operand {
    const char *name;
    enn_view view;
    uint32_t width; /* floats per row, as a multiple of units */
    enn_access access;
} operand;

static enn_status gates(enn_recorder *rec, const char *shader, uint32_t rows, uint32_t units, const operand *ops,
                        uint32_t count)
{
    enn_context *ctx = enn_recorder_context(rec);
    if (!rows || !units) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %u rows of %u units", shader, rows, units);
    if ((uint64_t)rows * units * 4 > 0xffffffffu)
        return enn_error(ENN_ERROR_UNSUPPORTED, "%s: %u rows of %u units is past 32-bit indexing", shader, rows, units);
    enn_binding b[8];
    for (uint32_t i = 0; i < count; i++) {
        uint64_t bytes = (uint64_t)rows * units * ops[i].width * 4;
        ENN_TRY(enn_ops_check_view(shader, ops[i].name, ops[i].view, bytes));
        b[i] = enn_bind(ops[i].view, bytes, ops[i].access);
    }
    uint32_t local = enn_ops_local_size(ctx, LOCAL, 0);
    const enn_pipeline *pipe;
    ENN_TRY(enn_ops_pipeline_local(ctx, shader, count, sizeof(gates_push), local, 0, &pipe));
    uint32_t gx, gy;
    ENN_TRY(enn_ops_grid_groups(ctx, ((uint64_t)rows * units + local - 1) / local, shader, &gx, &gy));
    gates_push push = {rows, units};
    return enn_record_dispatch(rec, pipe, b, count, &push, gx, gy, 1, shader);
}

enn_status enn_lstm_gates_forward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view pre, enn_view c_prev,
                                  enn_view c, enn_view h)
{
    const operand ops[] = {{"pre", pre, 4, ENN_ACCESS_READ_WRITE},
                           {"c_prev", c_prev, 1, ENN_ACCESS_READ},
                           {"c", c, 1, ENN_ACCESS_WRITE},
                           {"h", h, 1, ENN_ACCESS_WRITE}};
    return gates(rec, "rnn_gates", rows, units, ops, 4);
}

enn_status enn_lstm_gates_backward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view act, enn_view c_prev,
                                   enn_view c, enn_view dh, enn_view dc, enn_view dpre)
{
    const operand ops[] = {{"act", act, 4, ENN_ACCESS_READ},         {"c_prev", c_prev, 1, ENN_ACCESS_READ},
                           {"c", c, 1, ENN_ACCESS_READ},             {"dh", dh, 1, ENN_ACCESS_READ},
                           {"dc", dc, 1, ENN_ACCESS_READ_WRITE},     {"dpre", dpre, 4, ENN_ACCESS_WRITE}};
    return gates(rec, "rnn_gates_lstm_backward", rows, units, ops, 6);
}

enn_status enn_gru_gates_forward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view xw, enn_view hu,
                                 enn_view h_prev, enn_view h)
{
    const operand ops[] = {{"xw", xw, 3, ENN_ACCESS_READ_WRITE},
                           {"hu", hu, 3, ENN_ACCESS_READ},
                           {"h_prev", h_prev, 1, ENN_ACCESS_READ},
                           {"h", h, 1, ENN_ACCESS_WRITE}};
    return gates(rec, "rnn_gates_gru_forward", rows, units, ops, 4);
}

enn_status enn_gru_gates_backward(enn_recorder *rec, uint32_t rows, uint32_t units, enn_view act, enn_view hu,
                                  enn_view h_prev, enn_view dh, enn_view dh_prev, enn_view dxw, enn_view dhu)
{
    const operand ops[] = {{"act", act, 3, ENN_ACCESS_READ},         {"hu", hu, 3, ENN_ACCESS_READ},
                           {"h_prev", h_prev, 1, ENN_ACCESS_READ},   {"dh", dh, 1, ENN_ACCESS_READ},
                           {"dh_prev", dh_prev, 1, ENN_ACCESS_READ_WRITE},
                           {"dxw", dxw, 3, ENN_ACCESS_WRITE},        {"dhu", dhu, 3, ENN_ACCESS_WRITE}};
    return gates(rec, "rnn_gates_gru_backward", rows, units, ops, 7);
}
