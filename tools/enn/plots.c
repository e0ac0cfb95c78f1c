/* Heatmaps and line charts on cairo (see plots.h). */
#include "plots.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"

#define FONT "DejaVu Sans"
#define TITLE_SIZE 20.0
#define LABEL_SIZE 15.0
#define TICK_SIZE 13.0
#define PI 3.14159265358979323846

/* ---------------------------------------------------------------- colour maps
 * Piecewise linear in sRGB through a few control points. The sequential map follows
 * viridis' path (its end points and three points between, read off its published
 * description); the diverging one is a blue-white-red ramp whose two halves have
 * matching lightness steps, so equal |v| looks equally strong on either side. */
typedef struct colour_stop { double t, r, g, b; } colour_stop;

static const colour_stop sequential_stops[] = {
    {0.00, 0x44 / 255.0, 0x01 / 255.0, 0x54 / 255.0}, {0.25, 0x3b / 255.0, 0x52 / 255.0, 0x8b / 255.0},
    {0.50, 0x21 / 255.0, 0x91 / 255.0, 0x8c / 255.0}, {0.75, 0x5e / 255.0, 0xc9 / 255.0, 0x62 / 255.0},
    {1.00, 0xfd / 255.0, 0xe7 / 255.0, 0x25 / 255.0},
};
static const colour_stop diverging_stops[] = {
    {0.00, 0x21 / 255.0, 0x66 / 255.0, 0xac / 255.0}, {0.25, 0x67 / 255.0, 0xa9 / 255.0, 0xcf / 255.0},
    {0.42, 0xd1 / 255.0, 0xe5 / 255.0, 0xf0 / 255.0}, {0.50, 0xf7 / 255.0, 0xf7 / 255.0, 0xf7 / 255.0},
    {0.58, 0xfd / 255.0, 0xdb / 255.0, 0xc7 / 255.0}, {0.75, 0xef / 255.0, 0x8a / 255.0, 0x62 / 255.0},
    {1.00, 0xb2 / 255.0, 0x18 / 255.0, 0x2b / 255.0},
};

static const colour_stop *colormap_stops(plot_colormap map, size_t *count)
{
    if (map == PLOT_DIVERGING) {
        *count = sizeof diverging_stops / sizeof *diverging_stops;
        return diverging_stops;
    }
    *count = sizeof sequential_stops / sizeof *sequential_stops;
    return sequential_stops;
}

void plot_colormap_rgb(plot_colormap map, double t, double rgb[3])
{
    size_t n;
    const colour_stop *s = colormap_stops(map, &n);
    if (!(t > 0.0)) t = 0.0; /* also NaN */
    if (t > 1.0) t = 1.0;
    size_t i = 0;
    while (i + 2 < n && t > s[i + 1].t) i++;
    double f = (t - s[i].t) / (s[i + 1].t - s[i].t);
    rgb[0] = s[i].r + f * (s[i + 1].r - s[i].r);
    rgb[1] = s[i].g + f * (s[i + 1].g - s[i].g);
    rgb[2] = s[i].b + f * (s[i + 1].b - s[i].b);
}

/* ---------------------------------------------------------------- text */
static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Draws `s` with its anchor at (x, y): ha 0 left, 0.5 centre, 1 right; va 0 top,
 * 0.5 middle, 1 bottom (of the font's ascent + descent, so labels line up whatever
 * their letters); rotated by `angle` radians about the anchor. */
static void text(cairo_t *cr, double x, double y, const char *s, double ha, double va, double angle)
{
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, s, &te);
    cairo_font_extents(cr, &fe);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ha * te.x_advance, -va * (fe.ascent + fe.descent) + fe.ascent);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* ---------------------------------------------------------------- ticks */
typedef struct ticks {
    double first, step;
    int count;
    int decimals; /* -1: scientific notation */
} ticks;

/* A step of 1, 2, 2.5 or 5 times a power of ten giving about `target` intervals. */
static double nice_step(double range, int target)
{
    double raw = range / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 2.25 ? 2.0 : f < 3.5 ? 2.5 : f < 7.5 ? 5.0 : 10.0) * mag;
}

/* Whole-number steps: 1, 2 or 5 times a power of ten, at least 1. */
static double integer_step(double range, int target)
{
    double raw = range / target;
    if (raw <= 1.0) return 1.0;
    double mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

static ticks make_ticks(double lo, double hi, int target, int integer)
{
    ticks t = {0};
    if (!(hi > lo)) hi = lo + 1.0;
    t.step = integer ? integer_step(hi - lo, target) : nice_step(hi - lo, target);
    t.first = ceil(lo / t.step - 1e-9) * t.step;
    t.count = (int)floor((hi - t.first) / t.step + 1e-9) + 1;
    if (t.count < 0) t.count = 0;
    double biggest = fmax(fabs(lo), fabs(hi));
    if (biggest >= 1e5 || (t.step < 1e-4 && biggest < 1e-3)) {
        t.decimals = -1;
    } else {
        /* as many decimals as the step needs to be exact (0.25: 2, 0.5: 1, 20: 0) */
        t.decimals = 0;
        while (t.decimals < 8 && fabs(t.step * pow(10.0, t.decimals) - round(t.step * pow(10.0, t.decimals))) >
                                     1e-6 * t.step * pow(10.0, t.decimals))
            t.decimals++;
    }
    return t;
}

static double tick_value(const ticks *t, int i)
{
    double v = t->first + i * t->step;
    return fabs(v) < 1e-9 * t->step ? 0.0 : v; /* no "-0.00" */
}

static void tick_label(const ticks *t, double v, char *buf, size_t size)
{
    if (t->decimals < 0)
        snprintf(buf, size, "%.2g", v);
    else
        snprintf(buf, size, "%.*f", t->decimals, v);
}

/* ---------------------------------------------------------------- surfaces */
static enn_status begin(cairo_surface_t **surface, cairo_t **cr)
{
    *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PLOT_WIDTH, PLOT_HEIGHT);
    if (cairo_surface_status(*surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(*surface);
        return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "plot: cannot create a %dx%d image", PLOT_WIDTH, PLOT_HEIGHT);
    }
    *cr = cairo_create(*surface);
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    cairo_set_source_rgb(*cr, 0, 0, 0);
    return ENN_OK;
}

static cairo_status_t write_png_bytes(void *closure, const unsigned char *data, unsigned int length)
{
    return enn_atomic_write(closure, data, length) == ENN_OK ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Writes the PNG under a temporary name and renames it (core/atomic_file.h), so a reader
 * never sees half a picture. */
static enn_status finish(cairo_surface_t *surface, cairo_t *cr, const char *path)
{
    enn_status s = ENN_OK;
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    enn_atomic_file af;
    if (cs != CAIRO_STATUS_SUCCESS) {
        s = enn_error(ENN_ERROR_INTERNAL, "plot %s: cairo: %s", path, cairo_status_to_string(cs));
    } else if ((s = enn_atomic_open(&af, path)) == ENN_OK) {
        cs = cairo_surface_write_to_png_stream(surface, write_png_bytes, &af);
        if (cs == CAIRO_STATUS_SUCCESS) {
            s = enn_atomic_commit(&af);
        } else {
            /* A failed write left its reason in enn_last_error; cairo's own otherwise. */
            s = cs == CAIRO_STATUS_WRITE_ERROR ? ENN_ERROR_IO
                                               : enn_error(ENN_ERROR_IO, "cannot write %s: %s", path,
                                                           cairo_status_to_string(cs));
            enn_atomic_abort(&af);
        }
    }
    cairo_surface_destroy(surface);
    return s;
}

static void frame(cairo_t *cr, double x0, double y0, double x1, double y1)
{
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, floor(x0) + 0.5, floor(y0) + 0.5, floor(x1) - floor(x0), floor(y1) - floor(y0));
    cairo_stroke(cr);
}

static void tick_mark(cairo_t *cr, double x0, double y0, double x1, double y1)
{
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1.0);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
}

/* ---------------------------------------------------------------- heatmap */
static void data_range(const float *v, size_t n, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            *lo = fmin(*lo, v[i]);
            *hi = fmax(*hi, v[i]);
        }
    if (!isfinite(*lo)) *lo = *hi = 0.0;
}

/* Integer index ticks at cell centres along an axis of n cells. */
static void index_axis(cairo_t *cr, uint32_t n, double a0, double a1, double fixed, int vertical)
{
    ticks t = make_ticks(0, n > 1 ? n - 1 : 1, vertical ? 6 : 8, 1);
    char buf[32];
    set_font(cr, TICK_SIZE, 0);
    for (int i = 0; i < t.count; i++) {
        double v = tick_value(&t, i);
        if (v > n - 1) break;
        double p = a0 + (v + 0.5) / n * (a1 - a0);
        snprintf(buf, sizeof buf, "%.0f", v);
        if (vertical) {
            tick_mark(cr, fixed - 5, p, fixed, p);
            text(cr, fixed - 8, p, buf, 1.0, 0.5, 0);
        } else {
            tick_mark(cr, p, fixed, p, fixed + 5);
            text(cr, p, fixed + 8, buf, 0.5, 0.0, 0);
        }
    }
}

enn_status plot_heatmap_png(const char *path, const plot_heatmap *hm)
{
    if (!path || !hm || !hm->values || !hm->rows || !hm->cols)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "plot_heatmap_png: empty heatmap for %s", path ? path : "(null)");
    double lo = hm->lo, hi = hm->hi;
    if (!(lo < hi)) {
        data_range(hm->values, (size_t)hm->rows * hm->cols, &lo, &hi);
        if (hm->colormap == PLOT_DIVERGING) {
            hi = fmax(fabs(lo), fabs(hi));
            lo = -hi;
        }
        if (!(hi > lo)) { /* a constant picture: give the bar some width around it */
            double pad = lo != 0.0 ? fabs(lo) * 0.1 : 1.0;
            lo -= pad;
            hi += pad;
        }
    }

    /* One pixel per cell, scaled up without smoothing so cells keep sharp edges. */
    cairo_surface_t *cells = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)hm->cols, (int)hm->rows);
    if (cairo_surface_status(cells) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(cells);
        return enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "plot %s: %ux%u cells", path, hm->rows, hm->cols);
    }
    cairo_surface_flush(cells);
    unsigned char *pix = cairo_image_surface_get_data(cells);
    int stride = cairo_image_surface_get_stride(cells);
    for (uint32_t r = 0; r < hm->rows; r++)
        for (uint32_t c = 0; c < hm->cols; c++) {
            float v = hm->values[(size_t)r * hm->cols + c];
            double rgb[3] = {0.6, 0.6, 0.6};
            if (isfinite(v)) plot_colormap_rgb(hm->colormap, (v - lo) / (hi - lo), rgb);
            uint32_t px = 0xff000000u | (uint32_t)lround(rgb[0] * 255) << 16 | (uint32_t)lround(rgb[1] * 255) << 8 |
                          (uint32_t)lround(rgb[2] * 255);
            memcpy(pix + (size_t)r * stride + 4 * c, &px, 4);
        }
    cairo_surface_mark_dirty(cells);

    cairo_surface_t *surface;
    cairo_t *cr;
    enn_status s = begin(&surface, &cr);
    if (s != ENN_OK) {
        cairo_surface_destroy(cells);
        return s;
    }
    const double x0 = 95, x1 = PLOT_WIDTH - 165, y0 = 60, y1 = PLOT_HEIGHT - 75;

    if (hm->title) {
        set_font(cr, TITLE_SIZE, 1);
        text(cr, (x0 + x1) / 2, 18, hm->title, 0.5, 0.0, 0);
    }
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_clip(cr);
    cairo_translate(cr, x0, y0);
    double sx = (x1 - x0) / hm->cols, sy = (y1 - y0) / hm->rows;
    cairo_scale(cr, sx, sy);
    cairo_set_source_surface(cr, cells, 0, 0);
    /* Sharp cells when each is at least a pixel; more cells than pixels (a long
     * sequence's attention) are averaged rather than dropped. */
    cairo_pattern_set_filter(cairo_get_source(cr), sx >= 1 && sy >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(cells);
    frame(cr, x0, y0, x1, y1);

    index_axis(cr, hm->cols, x0, x1, y1, 0);
    index_axis(cr, hm->rows, y0, y1, x0, 1);
    set_font(cr, LABEL_SIZE, 0);
    if (hm->x_label) text(cr, (x0 + x1) / 2, PLOT_HEIGHT - 12, hm->x_label, 0.5, 1.0, 0);
    if (hm->y_label) text(cr, 22, (y0 + y1) / 2, hm->y_label, 0.5, 0.0, -PI / 2);

    /* Colour bar: a gradient through the same control points is the same map. */
    const double bx0 = x1 + 25, bx1 = bx0 + 22;
    size_t nstops;
    const colour_stop *st = colormap_stops(hm->colormap, &nstops);
    cairo_pattern_t *grad = cairo_pattern_create_linear(0, y1, 0, y0);
    for (size_t i = 0; i < nstops; i++) cairo_pattern_add_color_stop_rgb(grad, st[i].t, st[i].r, st[i].g, st[i].b);
    cairo_rectangle(cr, bx0, y0, bx1 - bx0, y1 - y0);
    cairo_set_source(cr, grad);
    cairo_fill(cr);
    cairo_pattern_destroy(grad);
    frame(cr, bx0, y0, bx1, y1);
    ticks t = make_ticks(lo, hi, 6, 0);
    char buf[32];
    double label_w = 0;
    set_font(cr, TICK_SIZE, 0);
    for (int i = 0; i < t.count; i++) {
        double v = tick_value(&t, i);
        if (v < lo - 1e-9 * t.step || v > hi + 1e-9 * t.step) continue;
        double p = y1 - (v - lo) / (hi - lo) * (y1 - y0);
        tick_label(&t, v, buf, sizeof buf);
        tick_mark(cr, bx1, p, bx1 + 5, p);
        text(cr, bx1 + 8, p, buf, 0.0, 0.5, 0);
        label_w = fmax(label_w, text_width(cr, buf));
    }
    if (hm->value_label) {
        set_font(cr, LABEL_SIZE, 0);
        text(cr, fmin(bx1 + 16 + label_w, PLOT_WIDTH - 24), (y0 + y1) / 2, hm->value_label, 0.5, 0.0, -PI / 2);
    }
    return finish(surface, cr, path);
}

/* ---------------------------------------------------------------- line charts */
static const double series_colours[PLOT_MAX_SERIES][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
    {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
};
static const double series_dashes[PLOT_MAX_SERIES] = {0, 6, 0, 6, 0, 6};

typedef struct box { double x0, y0, x1, y1; } box;

/* The legend: a row (or rows) of line samples and names, centred between x0 and x1
 * with its top at y, above the plot so that it never hides data. Returns its height. */
static double legend(cairo_t *cr, const plot_panel *p, double x0, double x1, double y, int draw)
{
    const double sample = 30, gap = 22, line_h = 20;
    set_font(cr, TICK_SIZE, 0);
    double rows = 0;
    uint32_t s = 0;
    while (s < p->series_count) {
        /* as many items as fit on this row */
        uint32_t end = s;
        double w = 0;
        while (end < p->series_count) {
            double iw = sample + 6 + text_width(cr, p->series[end].name ? p->series[end].name : "");
            if (end > s && w + gap + iw > x1 - x0) break;
            w += (end > s ? gap : 0) + iw;
            end++;
        }
        double x = (x0 + x1 - w) / 2, cy = y + line_h * (rows + 0.5);
        for (uint32_t k = s; draw && k < end; k++) {
            const double *c = series_colours[k];
            const char *name = p->series[k].name ? p->series[k].name : "";
            cairo_set_source_rgb(cr, c[0], c[1], c[2]);
            cairo_set_line_width(cr, 2.2);
            cairo_set_dash(cr, &series_dashes[k], series_dashes[k] > 0, 0);
            cairo_move_to(cr, x, cy);
            cairo_line_to(cr, x + sample, cy);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            cairo_arc(cr, x + sample / 2, cy, 3.5, 0, 2 * PI);
            cairo_fill(cr);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            text(cr, x + sample + 6, cy, name, 0.0, 0.5, 0);
            x += sample + 6 + text_width(cr, name) + gap;
        }
        rows++;
        s = end;
    }
    return rows * line_h;
}

static void draw_panel(cairo_t *cr, const plot_panel *p, box area)
{
    const double x0 = area.x0 + 82, x1 = area.x1 - 30, y1 = area.y1 - 62;
    if (p->title) {
        set_font(cr, LABEL_SIZE + 1, 1);
        text(cr, (x0 + x1) / 2, area.y0 + 10, p->title, 0.5, 0.0, 0);
    }
    double legend_top = area.y0 + 38;
    const double y0 = legend_top + legend(cr, p, x0, x1, legend_top, 0) + 10;
    legend(cr, p, x0, x1, legend_top, 1);
    /* Limits: x over the given points; y over the finite values, with 5% margins. */
    double xlo = p->n ? p->x[0] : 0, xhi = p->n ? p->x[p->n - 1] : 1;
    if (!(xhi > xlo)) { xlo -= 1; xhi += 1; }
    double ylo = INFINITY, yhi = -INFINITY;
    for (uint32_t s = 0; s < p->series_count; s++)
        for (uint32_t i = 0; i < p->n; i++)
            if (isfinite(p->series[s].y[i])) {
                ylo = fmin(ylo, p->series[s].y[i]);
                yhi = fmax(yhi, p->series[s].y[i]);
            }
    int have_data = isfinite(ylo);
    if (p->y_lo < p->y_hi) {
        ylo = p->y_lo;
        yhi = p->y_hi;
    } else if (!have_data) {
        ylo = 0;
        yhi = 1;
    } else {
        double pad = yhi > ylo ? 0.05 * (yhi - ylo) : (ylo != 0 ? 0.1 * fabs(ylo) : 1.0);
        ylo -= pad;
        yhi += pad;
    }
    /* room at the sides, so that the first and last points are not cut by the frame */
    double xpad = p->integer_x && xhi - xlo < 2 ? 0.5 : 0.04 * (xhi - xlo);
    xlo -= xpad;
    xhi += xpad;
#define PX(v) (x0 + ((v) - xlo) / (xhi - xlo) * (x1 - x0))
#define PY(v) (y1 - ((v) - ylo) / (yhi - ylo) * (y1 - y0))

    /* grid and ticks */
    char buf[32];
    set_font(cr, TICK_SIZE, 0);
    ticks tx = make_ticks(xlo, xhi, 6, p->integer_x), ty = make_ticks(ylo, yhi, 6, 0);
    cairo_set_line_width(cr, 1.0);
    for (int i = 0; i < tx.count; i++) {
        double v = tick_value(&tx, i), px = floor(PX(v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, px, y0);
        cairo_line_to(cr, px, y1);
        cairo_stroke(cr);
        tick_mark(cr, px, y1, px, y1 + 5);
        tick_label(&tx, v, buf, sizeof buf);
        text(cr, px, y1 + 8, buf, 0.5, 0.0, 0);
    }
    double label_w = 0;
    for (int i = 0; i < ty.count; i++) {
        double v = tick_value(&ty, i), py = floor(PY(v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x0, py);
        cairo_line_to(cr, x1, py);
        cairo_stroke(cr);
        tick_mark(cr, x0 - 5, py, x0, py);
        tick_label(&ty, v, buf, sizeof buf);
        text(cr, x0 - 8, py, buf, 1.0, 0.5, 0);
        label_w = fmax(label_w, text_width(cr, buf));
    }
    frame(cr, x0, y0, x1, y1);
    set_font(cr, LABEL_SIZE, 0);
    if (p->x_label) text(cr, (x0 + x1) / 2, area.y1 - 14, p->x_label, 0.5, 1.0, 0);
    if (p->y_label) text(cr, fmax(x0 - 16 - label_w, area.x0 + 24), (y0 + y1) / 2, p->y_label, 0.5, 1.0, -PI / 2);
    if (!have_data) {
        set_font(cr, LABEL_SIZE, 0);
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
        text(cr, (x0 + x1) / 2, (y0 + y1) / 2, "no data", 0.5, 0.5, 0);
        return;
    }

    /* series: lines between consecutive finite points, and a dot on each point */
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (uint32_t s = 0; s < p->series_count; s++) {
        const double *c = series_colours[s];
        const float *y = p->series[s].y;
        cairo_set_source_rgb(cr, c[0], c[1], c[2]);
        cairo_set_line_width(cr, 2.2);
        cairo_set_dash(cr, &series_dashes[s], series_dashes[s] > 0, 0);
        int open = 0;
        for (uint32_t i = 0; i < p->n; i++) {
            if (!isfinite(y[i])) { open = 0; continue; }
            if (open) cairo_line_to(cr, PX(p->x[i]), PY(y[i]));
            else cairo_move_to(cr, PX(p->x[i]), PY(y[i]));
            open = 1;
        }
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        double radius = p->n <= 40 ? 3.5 : 0.0;
        for (uint32_t i = 0; radius > 0 && i < p->n; i++)
            if (isfinite(y[i])) {
                cairo_arc(cr, PX(p->x[i]), PY(y[i]), radius, 0, 2 * PI);
                cairo_fill(cr);
            }
    }
    cairo_restore(cr);

#undef PX
#undef PY
}

enn_status plot_lines_png(const char *path, const char *title, const plot_panel *panels, uint32_t panel_count)
{
    if (!path || !panels || panel_count == 0 || panel_count > PLOT_MAX_PANELS)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "plot_lines_png: %u panels for %s (1..%d)", panel_count,
                         path ? path : "(null)", PLOT_MAX_PANELS);
    for (uint32_t k = 0; k < panel_count; k++)
        if (panels[k].series_count > PLOT_MAX_SERIES || (panels[k].n && !panels[k].x))
            return enn_error(ENN_ERROR_INVALID_ARGUMENT, "plot %s: panel %u has %u series (at most %d) or no x", path,
                             k, panels[k].series_count, PLOT_MAX_SERIES);
    cairo_surface_t *surface;
    cairo_t *cr;
    ENN_TRY(begin(&surface, &cr));
    double top = 0;
    if (title) {
        set_font(cr, TITLE_SIZE, 1);
        text(cr, PLOT_WIDTH / 2.0, 14, title, 0.5, 0.0, 0);
        top = 40;
    }
    double w = (double)PLOT_WIDTH / panel_count;
    for (uint32_t k = 0; k < panel_count; k++)
        draw_panel(cr, &panels[k], (box){k * w, top, (k + 1) * w, PLOT_HEIGHT});
    return finish(surface, cr, path);
}
