/* enn bench ops: embedding lookup forward and its scatter-add backward. */
#include <stdio.h>

#include "bench.h"
#include "bench_cpu.h"
#include "bench_ops_case.h"
#include "ops/embedding.h"

typedef struct emb_state {
    uint32_t rows, dim, vocab;
    float *table, *out, *dout, *dtable;
    uint32_t *ids;
    enn_buffer *btable, *bids, *bout, *bdout, *bws, *bdtable;
} emb_state;

static enn_status rec_emb_fwd(enn_recorder *rec, void *p)
{
    emb_state *s = p;
    return enn_embedding_forward(rec, s->rows, s->dim, s->vocab, V(s->btable), V(s->bids), V(s->bout));
}
static void cpu_emb_fwd(void *p)
{
    emb_state *s = p;
    cpu_embedding_forward(s->rows, s->dim, s->table, s->ids, s->out);
}
/* dtable accumulates over repeated runs on both sides; only the first run is checked */
static enn_status rec_emb_bwd(enn_recorder *rec, void *p)
{
    emb_state *s = p;
    return enn_embedding_backward(rec, s->rows, s->dim, s->vocab, V(s->bids), V(s->bdout), V(s->bws), V(s->bdtable));
}
static void cpu_emb_bwd(void *p)
{
    emb_state *s = p;
    cpu_embedding_backward(s->rows, s->dim, s->ids, s->dout, s->dtable);
}

static int emb_one(enn_context *ctx, enn_recorder *rec, const bench_options *o, arena *ar, size_t i)
{
    /* {rows, dim, vocab}: a small one, and the LM's R=4096 tokens, h=128, over a word
     * vocabulary (188590 on GPUs, 8192 on CPU devices) */
    emb_state s = {.rows = i ? 4096 : 256, .dim = i ? 128 : 64, .vocab = i ? (is_cpu_device(ctx) ? 8192 : 188590) : 1000};
    size_t VD = (size_t)s.vocab * s.dim, RD = (size_t)s.rows * s.dim;
    s.table = host_rand(ar, VD, -1, 1);
    s.ids = host_ids(ar, s.rows, s.vocab);
    s.dout = host_rand(ar, RD, -1, 1);
    s.out = host_alloc(ar, RD * 4); s.dtable = host_alloc(ar, VD * 4);
    s.btable = dev_buf(ar, s.table, VD * 4); s.bids = dev_buf(ar, s.ids, s.rows * 4);
    s.bout = dev_buf(ar, NULL, RD * 4); s.bdout = dev_buf(ar, s.dout, RD * 4);
    s.bws = dev_buf(ar, NULL, enn_embedding_backward_workspace_bytes(s.rows)); s.bdtable = dev_buf(ar, NULL, VD * 4);
    if (!arena_ok(ar)) return 1;
    /* the distinct ids: the rows of dtable the backward reads and writes */
    unsigned char *seen = host_alloc(ar, s.vocab);
    if (!seen) return !arena_ok(ar);
    double distinct = 0;
    for (uint32_t r = 0; r < s.rows; r++) distinct += !seen[s.ids[r]], seen[s.ids[r]] = 1;
    bench_case c = {.st = &s};
    snprintf(c.shape, sizeof c.shape, "R%u d%u V%u", s.rows, s.dim, s.vocab);
    /* bytes: ids read, one table row read and one out row written per id */
    bench_case f = c;
    f.kernel = "embedding_fwd", f.bytes = 4.0 * s.rows + 8.0 * RD, f.record = rec_emb_fwd, f.cpu = cpu_emb_fwd;
    add_check(&f, s.bout, s.out, RD, 0);
    int rc = run_case(ctx, rec, o, &f);
    /* bytes: ids, dout read; each distinct id's dtable row read and written */
    bench_case b = c;
    b.kernel = "embedding_bwd", b.bytes = 4.0 * s.rows + 4.0 * RD + 8.0 * distinct * s.dim;
    b.record = rec_emb_bwd, b.cpu = cpu_emb_bwd;
    add_check(&b, s.bdtable, s.dtable, VD, 0);
    return rc | run_case(ctx, rec, o, &b);
}

int bench_embedding(enn_context *ctx, const bench_options *o) { return for_shapes(ctx, o, 2, emb_one); }
