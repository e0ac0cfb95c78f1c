/* Progress bar and plain progress lines (see progress.h). */
#include "progress.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void progress_begin(progress *p, FILE *out, int force_plain, const char *label, size_t batches)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = !force_plain && isatty(fileno(out));
    snprintf(p->label, sizeof p->label, "%s", label);
    p->batches = batches;
    /* About ten lines an epoch when nobody watches a terminal. */
    p->line_every = batches >= 10 ? batches / 10 : 1;
    p->start = p->last_draw = now_seconds();
}

static void format_duration(char *buf, size_t size, double seconds)
{
    if (!(seconds >= 0.0) || seconds > 1e7) {
        snprintf(buf, size, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

void progress_update(progress *p, size_t done, size_t batch_samples, double loss, double accuracy)
{
    p->samples += batch_samples;
    double t = now_seconds(), elapsed = t - p->start;
    int last = done == p->batches;
    if (p->tty ? (!last && t - p->last_draw < 0.2) : (done % p->line_every && !last)) return;
    p->last_draw = t;
    double rate = elapsed > 0.0 ? (double)p->samples / elapsed : 0.0;
    char eta[32], acc[32] = "";
    format_duration(eta, sizeof eta, done ? elapsed / (double)done * (double)(p->batches - done) : -1.0);
    if (!isnan(accuracy)) snprintf(acc, sizeof acc, " acc %.4f", accuracy);
    if (p->tty) {
        enum { WIDTH = 24 };
        char bar[WIDTH + 1];
        size_t fill = p->batches ? done * WIDTH / p->batches : WIDTH;
        for (size_t i = 0; i < WIDTH; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[WIDTH] = 0;
        fprintf(p->out, "\r%s [%s] %zu/%zu loss %.4f%s %.0f samples/s ETA %s\033[K", p->label, bar, done,
                p->batches, loss, acc, rate, eta);
    } else {
        fprintf(p->out, "%s batch %zu/%zu loss %.4f%s %.1f samples/s ETA %s\n", p->label, done, p->batches, loss,
                acc, rate, eta);
    }
    fflush(p->out);
}

void progress_end(progress *p)
{
    if (p->tty) {
        fprintf(p->out, "\r\033[K");
        fflush(p->out);
    }
}
