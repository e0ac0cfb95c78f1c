/* See train_report.h. */
#include "train_report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int make_dirs_noting(const char *path, char *first_made, size_t size)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    if (first_made) first_made[0] = 0;
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) == 0) {
                if (first_made && !first_made[0]) snprintf(first_made, size, "%s", buf);
            } else if (errno != EEXIST) {
                fprintf(stderr, "enn: cannot create %s: %s\n", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c) return 0;
        }
    }
}

int make_dirs(const char *path)
{
    return make_dirs_noting(path, NULL, 0);
}

/* Whether dir holds no entry but `leftover` (which may be missing too). */
static int holds_only(const char *dir, const char *leftover)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int only = 1;
    for (struct dirent *e; only && (e = readdir(d));)
        only = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, leftover);
    closedir(d);
    return only;
}

void remove_made_dirs(const char *path, const char *first_made, const char *leftover)
{
    if (!first_made[0] || !holds_only(path, leftover)) return;
    char buf[1024], file[1200];
    snprintf(file, sizeof file, "%s/%s", path, leftover);
    if (unlink(file) && errno != ENOENT) return;
    /* Innermost first; rmdir leaves a directory something else has since written into. */
    snprintf(buf, sizeof buf, "%s", path);
    size_t stop = strlen(first_made);
    for (;;) {
        if (rmdir(buf)) return;
        char *slash = strrchr(buf, '/');
        if (!slash || (size_t)(slash - buf) < stop) return;
        *slash = 0;
    }
}

/* Whether `name` is `base` plus a temporary suffix: mkstemp's ".XXXXXX" (what the
 * atomic writes use), or ".tmp" / ".tmp.<pid>" (what earlier versions used). */
static int is_temporary_of(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) || name[n] != '.') return 0;
    const char *t = name + n + 1;
    if (!strcmp(t, "tmp")) return 1;
    if (!strncmp(t, "tmp.", 4)) {
        t += 4;
        if (!*t) return 0;
        while (*t >= '0' && *t <= '9') t++;
        return !*t;
    }
    size_t k = 0;
    while (t[k] && ((t[k] >= 'a' && t[k] <= 'z') || (t[k] >= 'A' && t[k] <= 'Z') || (t[k] >= '0' && t[k] <= '9'))) k++;
    return k == 6 && !t[k];
}

/* A writer holds its temporary locked (core/atomic_file.c) until it renames it: a locked
 * one belongs to a live process, an `enn eval` writing a picture here, say. */
static void remove_if_unlocked(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        unlink(path); /* a link (no writer's), or a file that cannot be told: as before */
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) unlink(path);
    close(fd);
}

void remove_stale_temporaries(const char *dir)
{
    static const char *const bases[] = {"best.safetensors", "last.safetensors", "last.json", "vocab.txt",
                                        "trace_stats.csv", "confusion_matrix.png", "class_scores.png", NULL};
    const char *dirs[2] = {dir, NULL};
    char plots[1200];
    snprintf(plots, sizeof plots, "%s/plots", dir);
    dirs[1] = plots;
    for (int d = 0; d < 2; d++) {
        DIR *h = opendir(dirs[d]);
        if (!h) continue;
        for (struct dirent *e; (e = readdir(h));) {
            int stale = 0;
            for (int b = 0; bases[b] && !stale; b++) stale = is_temporary_of(e->d_name, bases[b]);
            /* The trace monitor's pictures: <name>.png plus a suffix. */
            const char *png = strstr(e->d_name, ".png.");
            if (!stale && d == 1 && png) {
                char base[256];
                snprintf(base, sizeof base, "%.*s", (int)(png - e->d_name + 4), e->d_name);
                stale = is_temporary_of(e->d_name, base);
            }
            if (stale) {
                char path[1500];
                snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
                remove_if_unlocked(path);
            }
        }
        closedir(h);
    }
}

FILE *open_log(const char *dir, const char *name, const char *header, int append, uint64_t cut_to)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    /* Rows written after the state a run resumes from (an epoch logged, then a crash
     * before its checkpoint) would appear twice: cut them. */
    if (append && cut_to && stat(path, &st) == 0 && (uint64_t)st.st_size > cut_to && truncate(path, (off_t)cut_to)) {
        fprintf(stderr, "enn train: cannot cut %s back to the %llu bytes of the state resumed: %s\n", path,
                (unsigned long long)cut_to, strerror(errno));
        return NULL;
    }
    int fresh = !append || stat(path, &st) != 0 || st.st_size == 0;
    FILE *f = fopen(path, append ? "a" : "w");
    if (!f) fprintf(stderr, "enn train: cannot open %s: %s\n", path, strerror(errno));
    else if (fresh && header) fprintf(f, "%s\n", header);
    return f;
}


int log_epoch(FILE *csv, FILE *json, const epoch_record *r)
{
    /* NaN (no validation set, no accuracy for a regressor) is an empty CSV field and a
     * JSON null. */
#define NUM(buf, v) (isnan(v) ? "" : (snprintf(buf, sizeof buf, "%.6g", v), buf))
#define JNUM(buf, v) (isnan(v) ? "null" : (snprintf(buf, sizeof buf, "%.6g", v), buf))
    char a[32], b[32], c[32], d[32], e[32], t[5][32];
    const trace_stats *s = &r->trace;
    double tv[5] = {s->mean_abs, s->max, s->min, s->std, s->sparsity};
    for (int i = 0; i < 5; i++)
        if (!r->have_trace) tv[i] = NAN;
    if (csv) {
        fprintf(csv, "%u,%s,%s,%s,%s,%s,%.3f", r->epoch, NUM(a, r->train_loss), NUM(b, r->train_acc),
                NUM(c, r->val_loss), NUM(d, r->val_acc), NUM(e, r->lr), r->seconds);
        for (int i = 0; i < 5; i++) fprintf(csv, ",%s", NUM(t[i], tv[i]));
        fprintf(csv, "\n");
    }
    if (json) {
        fprintf(json,
                "{\"epoch\": %u, \"train_loss\": %s, \"train_accuracy\": %s, \"val_loss\": %s, "
                "\"val_accuracy\": %s, \"learning_rate\": %s, \"seconds\": %.3f",
                r->epoch, JNUM(a, r->train_loss), JNUM(b, r->train_acc), JNUM(c, r->val_loss), JNUM(d, r->val_acc),
                JNUM(e, r->lr), r->seconds);
        const char *names[5] = {"trace_mean_abs", "trace_max", "trace_min", "trace_std", "trace_sparsity"};
        for (int i = 0; i < 5; i++) fprintf(json, ", \"%s\": %s", names[i], JNUM(t[i], tv[i]));
        fprintf(json, "}\n");
    }
#undef NUM
#undef JNUM
    /* A full disk must not lose epochs silently. */
    FILE *logs[2] = {csv, json};
    for (int i = 0; i < 2; i++)
        if (logs[i] && (fflush(logs[i]) != 0 || ferror(logs[i]))) {
            fprintf(stderr, "enn train: cannot write %s: %s\n", i ? "metrics.jsonl" : "metrics.csv",
                    errno ? strerror(errno) : "write error");
            return -1;
        }
    return 0;
}

static const char *model_name(enn_model_kind k)
{
    static const char *names[] = {"enn", "rnn", "gru", "lstm"};
    return k <= ENN_MODEL_LSTM ? names[k] : "?";
}

void print_model(const enn_model_config *c, const train_data *d)
{
    uint64_t trainable = 0, reference = 0;
    enn_model_parameter_count(c, &trainable, &reference);
    const char *task = d->head == ENN_HEAD_CLASSIFIER ? "classifier"
                       : d->head == ENN_HEAD_REGRESSOR ? "regressor"
                                                       : "language model";
    char detail[96] = "";
    if (d->head == ENN_HEAD_CLASSIFIER)
        snprintf(detail, sizeof detail, ", %s pooling", c->pooling == ENN_POOL_LAST ? "last-state" : "attention");
    else if (d->head == ENN_HEAD_LANGUAGE_MODEL)
        snprintf(detail, sizeof detail, c->lm_input == ENN_LM_EMBEDDING ? ", embedding %u" : ", token id as a float",
                 c->embedding_dim);
    if (c->kind == ENN_MODEL_ENN)
        printf("model: ENN %s, h=%u N=%u%s, input [T=%u, d=%u], %u outputs: %llu parameters\n", task, c->cell.hidden,
               c->cell.memory_slots, detail, c->max_seq_len, c->input_features, c->outputs,
               (unsigned long long)trainable);
    else
        printf("model: %s %s, %u layers%s, input [T=%u, d=%u], %u outputs: %llu parameters\n", model_name(c->kind),
               task, c->layers, detail, c->max_seq_len, c->input_features, c->outputs, (unsigned long long)trainable);
}

/* Test metrics as the last lines of the run (parsed by tests/test_train_cli.c:
 * "test accuracy <value>"). */
void print_test(const train_options *o, const train_data *d, const metric_sum *sum, const confusion *matrix)
{
    double loss = metric_loss(sum);
    printf("test: %llu %s, loss %.4f", (unsigned long long)sum->counted,
           d->head == ENN_HEAD_LANGUAGE_MODEL ? "tokens" : "samples", loss);
    if (d->head == ENN_HEAD_LANGUAGE_MODEL) printf(", perplexity %.2f", metric_perplexity(loss));
    printf("\n");
    if (matrix && matrix->counts && o->report)
        confusion_print(stdout, matrix, train_data_class_names(o->data.kind, matrix->classes));
    if (d->head != ENN_HEAD_REGRESSOR) printf("test accuracy %.4f\n", metric_accuracy(sum));
}
