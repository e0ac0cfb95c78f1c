/* The trace monitor (see trace_monitor.h): read H_T and a from an evaluation of the
 * sample batch, keep the statistics per epoch, draw the pictures with plots.c. */
#include "trace_monitor.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "plots.h"

typedef struct epoch_record {
    float epoch;
    trace_stats stats;
    trace_epoch_metrics metrics;
} epoch_record;

struct trace_monitor {
    char *dir;
    FILE *log;
    uint32_t N, h;          /* trace shape, fixed by the first model seen */
    float *initial;         /* [N, h] */
    int initial_before_training;
    float *current;         /* [N, h] */
    float *difference;      /* [N, h] */
    epoch_record *history;
    uint32_t count, capacity;
};

/* mkdir -p */
static enn_status make_dirs(const char *dir)
{
    char *p = strdup(dir);
    if (!p) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: %s", dir);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != '\0') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            enn_status st = enn_error(ENN_ERROR_IO, "cannot create directory %s: %s", p, strerror(errno));
            free(p);
            return st;
        }
        *s = c;
        if (c == '\0') break;
    }
    free(p);
    return ENN_OK;
}

enn_status trace_monitor_create(const char *dir, FILE *log, trace_monitor **out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "trace_monitor_create: out is NULL");
    *out = NULL;
    if (!dir || !dir[0]) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "trace_monitor_create: no directory");
    ENN_TRY(make_dirs(dir));
    trace_monitor *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor for %s", dir);
    }
    m->log = log;
    *out = m;
    return ENN_OK;
}

void trace_monitor_destroy(trace_monitor *m)
{
    if (!m) return;
    free(m->dir);
    free(m->initial);
    free(m->current);
    free(m->difference);
    free(m->history);
    free(m);
}

uint32_t trace_monitor_epochs(const trace_monitor *m) { return m ? m->count : 0; }

static char *path_in(const trace_monitor *m, const char *name)
{
    size_t n = strlen(m->dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", m->dir, name);
    return p;
}

/* Evaluates the first samples of `sample` and reads sample 0's H_T into mon->current and
 * its attention, transposed to [N, T], into *attention (malloc'd; NULL: not wanted). */
static enn_status evaluate_sample(trace_monitor *mon, enn_model *model, const enn_batch *sample, float **attention,
                                  uint32_t *T_out)
{
    if (!mon || !model || !sample)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "trace monitor: NULL monitor, model or sample batch");
    const enn_model_config *c = enn_model_get_config(model);
    if (c->kind != ENN_MODEL_ENN)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "trace monitor: the model has no Hebbian trace (not an ENN)");
    enn_batch b = *sample;
    if (b.size > TRACE_MONITOR_MAX_SAMPLES) b.size = TRACE_MONITOR_MAX_SAMPLES;
    if (b.size > c->max_batch) b.size = c->max_batch;
    uint32_t N = c->cell.memory_slots, h = c->cell.hidden, B = b.size, T = b.seq_len;
    if (!mon->current) {
        mon->N = N;
        mon->h = h;
        mon->current = malloc((size_t)N * h * sizeof(float));
        mon->difference = malloc((size_t)N * h * sizeof(float));
        if (!mon->current || !mon->difference)
            return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: trace [%u, %u]", N, h);
    } else if (mon->N != N || mon->h != h) {
        return enn_error(ENN_ERROR_SHAPE, "trace monitor: trace is [%u, %u], earlier [%u, %u]", N, h, mon->N, mon->h);
    }
    ENN_TRY(enn_model_evaluate(model, &b, NULL, NULL));

    size_t copies = c->cell.trace_mode == ENN_TRACE_PER_SAMPLE ? B : 1;
    size_t n_trace = copies * N * h, n_att = (size_t)T * B * N;
    float *buf = malloc((n_trace > n_att ? n_trace : n_att) * sizeof(float));
    if (!buf) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: reading H_T and a");
    enn_status s = enn_model_read(model, "out.H_T", buf, n_trace);
    if (s == ENN_OK) memcpy(mon->current, buf, (size_t)N * h * sizeof(float)); /* sample 0's, or the shared one */
    if (s == ENN_OK && attention) {
        s = enn_model_read(model, "out.a", buf, n_att);
        *attention = s == ENN_OK ? malloc((size_t)N * T * sizeof(float)) : NULL;
        if (s == ENN_OK && !*attention) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: attention");
        for (uint32_t t = 0; s == ENN_OK && t < T; t++)
            for (uint32_t n = 0; n < N; n++) (*attention)[(size_t)n * T + t] = buf[((size_t)t * B + 0) * N + n];
    }
    free(buf);
    if (T_out) *T_out = T;
    return s;
}

enn_status trace_monitor_capture_initial(trace_monitor *mon, enn_model *model, const enn_batch *sample)
{
    ENN_TRY(evaluate_sample(mon, model, sample, NULL, NULL));
    free(mon->initial);
    mon->initial = malloc((size_t)mon->N * mon->h * sizeof(float));
    if (!mon->initial) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: initial trace");
    memcpy(mon->initial, mon->current, (size_t)mon->N * mon->h * sizeof(float));
    mon->initial_before_training = 1;
    return ENN_OK;
}

static enn_status write_csv(const trace_monitor *m)
{
    char *path = path_in(m, "trace_stats.csv");
    if (!path) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: path");
    /* Rewritten whole each epoch: through a temporary file, so a reader (or a crash)
     * never sees it half written. */
    enn_atomic_file af;
    enn_status s = enn_atomic_open(&af, path);
    if (s == ENN_OK) {
        FILE *f = af.f;
        fprintf(f, "epoch,mean_abs,max,min,std,sparsity,train_loss,train_accuracy,val_loss,val_accuracy\n");
        for (uint32_t i = 0; i < m->count; i++) {
            const epoch_record *r = &m->history[i];
            fprintf(f, "%g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n", r->epoch, r->stats.mean_abs, r->stats.max,
                    r->stats.min, r->stats.std, r->stats.sparsity, r->metrics.train_loss, r->metrics.train_accuracy,
                    r->metrics.val_loss, r->metrics.val_accuracy);
        }
        if (ferror(f)) {
            s = enn_error(ENN_ERROR_IO, "error writing %s: %s", path, strerror(errno));
            enn_atomic_abort(&af);
        } else {
            s = enn_atomic_commit(&af);
        }
    }
    free(path);
    return s;
}

static enn_status heatmap(const trace_monitor *m, const char *name, const plot_heatmap *hm)
{
    char *path = path_in(m, name);
    if (!path) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: path");
    enn_status s = plot_heatmap_png(path, hm);
    free(path);
    return s;
}

static enn_status lines(const trace_monitor *m, const char *name, const char *title, const plot_panel *p, uint32_t n)
{
    char *path = path_in(m, name);
    if (!path) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: path");
    enn_status s = plot_lines_png(path, title, p, n);
    free(path);
    return s;
}

static enn_status draw(const trace_monitor *m, const float *attention, uint32_t T, const char *which)
{
    const epoch_record *last = &m->history[m->count - 1];
    char title[160], initial_title[160], diff_title[160], att_title[160];
    snprintf(title, sizeof title, "Hebbian trace H after epoch %g%s", last->epoch, which);
    if (m->initial_before_training)
        snprintf(initial_title, sizeof initial_title, "Initial trace H, before training%s", which);
    else
        snprintf(initial_title, sizeof initial_title, "Initial trace H, after epoch %g%s", m->history[0].epoch, which);
    snprintf(diff_title, sizeof diff_title, "Trace change: H(epoch %g) \u2212 H(initial)", last->epoch);
    snprintf(att_title, sizeof att_title, "Attention over memory slots, sample 0, epoch %g", last->epoch);

    plot_heatmap hm = {.x_label = "hidden unit", .y_label = "memory slot", .value_label = "H",
                       .rows = m->N, .cols = m->h, .colormap = PLOT_SEQUENTIAL};
    hm.title = title;
    hm.values = m->current;
    ENN_TRY(heatmap(m, "trace_heatmap.png", &hm));
    hm.title = initial_title;
    hm.values = m->initial;
    ENN_TRY(heatmap(m, "trace_initial.png", &hm));
    hm.title = diff_title;
    hm.values = m->difference;
    hm.colormap = PLOT_DIVERGING;
    hm.value_label = "\u0394H";
    ENN_TRY(heatmap(m, "trace_difference.png", &hm));

    /* Attention: the colours span the values present (near-uniform attention over many
     * slots would otherwise be one flat colour); the colour bar gives the numbers. */
    plot_heatmap att = {.title = att_title, .x_label = "time step", .y_label = "memory slot",
                        .value_label = "attention a", .values = attention, .rows = m->N, .cols = T,
                        .colormap = PLOT_SEQUENTIAL};
    ENN_TRY(heatmap(m, "attention.png", &att));

    uint32_t n = m->count;
    float *col = malloc((size_t)n * 10 * sizeof(float));
    if (!col) return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: history");
    float *x = col, *mean_abs = col + n, *std = col + 2 * n, *mx = col + 3 * n, *mn = col + 4 * n,
          *sparsity = col + 5 * n, *tl = col + 6 * n, *vl = col + 7 * n, *ta = col + 8 * n, *va = col + 9 * n;
    for (uint32_t i = 0; i < n; i++) {
        const epoch_record *r = &m->history[i];
        x[i] = r->epoch;
        mean_abs[i] = (float)r->stats.mean_abs;
        std[i] = (float)r->stats.std;
        mx[i] = (float)r->stats.max;
        mn[i] = (float)r->stats.min;
        sparsity[i] = (float)r->stats.sparsity;
        tl[i] = r->metrics.train_loss;
        vl[i] = r->metrics.val_loss;
        ta[i] = r->metrics.train_accuracy;
        va[i] = r->metrics.val_accuracy;
    }
    plot_panel stats[2] = {
        {.title = "Trace values", .x_label = "epoch", .y_label = "H", .x = x, .n = n, .integer_x = 1,
         .series = {{"max", mx}, {"mean |H|", mean_abs}, {"std", std}, {"min", mn}}, .series_count = 4},
        {.title = "Sparsity", .x_label = "epoch", .y_label = "fraction of |H| < 0.01", .x = x, .n = n,
         .integer_x = 1, .series = {{"sparsity", sparsity}}, .series_count = 1, .y_lo = 0.0f, .y_hi = 1.0f},
    };
    enn_status s = lines(m, "trace_stats.png", "Hebbian trace statistics", stats, 2);
    plot_panel curves[2] = {
        {.title = "Loss", .x_label = "epoch", .y_label = "loss", .x = x, .n = n, .integer_x = 1,
         .series = {{"train", tl}, {"validation", vl}}, .series_count = 2},
        {.title = "Accuracy", .x_label = "epoch", .y_label = "accuracy", .x = x, .n = n, .integer_x = 1,
         .series = {{"train", ta}, {"validation", va}}, .series_count = 2},
    };
    if (s == ENN_OK) s = lines(m, "training_curves.png", "Training curves", curves, 2);
    free(col);
    return s;
}

enn_status trace_monitor_epoch(trace_monitor *mon, uint32_t epoch, enn_model *model, const enn_batch *sample,
                               const trace_epoch_metrics *metrics, trace_stats *stats_out)
{
    float *attention = NULL;
    uint32_t T = 0;
    enn_status s = evaluate_sample(mon, model, sample, &attention, &T);
    if (s != ENN_OK) {
        free(attention);
        return s;
    }
    size_t nh = (size_t)mon->N * mon->h;
    if (!mon->initial) {
        mon->initial = malloc(nh * sizeof(float));
        if (!mon->initial) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: initial trace");
        else memcpy(mon->initial, mon->current, nh * sizeof(float));
    }
    if (s == ENN_OK && mon->count == mon->capacity) {
        uint32_t cap = mon->capacity ? 2 * mon->capacity : 16;
        epoch_record *h = realloc(mon->history, cap * sizeof *h);
        if (!h) s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "trace monitor: history of %u epochs", cap);
        else {
            mon->history = h;
            mon->capacity = cap;
        }
    }
    if (s != ENN_OK) {
        free(attention);
        return s;
    }
    for (size_t i = 0; i < nh; i++) mon->difference[i] = mon->current[i] - mon->initial[i];
    epoch_record *r = &mon->history[mon->count++];
    r->epoch = (float)epoch;
    r->stats = trace_stats_compute(mon->current, nh);
    r->metrics = metrics ? *metrics : (trace_epoch_metrics){NAN, NAN, NAN, NAN};
    if (stats_out) *stats_out = r->stats;
    if (mon->log)
        fprintf(mon->log, "epoch %u trace: mean|H| %.4g  max %.4g  min %.4g  std %.4g  sparsity %.3f\n", epoch,
                r->stats.mean_abs, r->stats.max, r->stats.min, r->stats.std, r->stats.sparsity);
    const enn_model_config *c = enn_model_get_config(model);
    s = write_csv(mon);
    if (s == ENN_OK) s = draw(mon, attention, T, c->cell.trace_mode == ENN_TRACE_PER_SAMPLE ? " (sample 0)" : "");
    free(attention);
    return s;
}
