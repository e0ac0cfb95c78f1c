/* A small plotting module on cairo: heatmaps with a colour bar, and line charts with
 * several series and a legend, written as PNG files of a fixed size.
 *
 * Only the `enn` tool uses it; libenn itself draws nothing. Text is cairo's toy text API
 * in DejaVu Sans (fonts-dejavu-core); tick positions come from the "nice numbers" rule
 * (steps of 1, 2, 2.5 or 5 times a power of ten). */
#ifndef ENN_TOOLS_PLOTS_H
#define ENN_TOOLS_PLOTS_H

#include <stdint.h>

#include "enn.h"

/* Every PNG this module writes has this size in pixels. */
#define PLOT_WIDTH 1000
#define PLOT_HEIGHT 640

#define PLOT_MAX_SERIES 6
#define PLOT_MAX_PANELS 3

typedef enum plot_colormap {
    PLOT_SEQUENTIAL = 0, /* viridis-like: dark blue, teal, green, yellow (monotone lightness) */
    PLOT_DIVERGING = 1,  /* blue, white, red around zero, with symmetric limits */
} plot_colormap;

typedef struct plot_heatmap {
    const char *title;
    const char *x_label, *y_label; /* columns run along x, rows along y (row 0 at the top) */
    const char *value_label;       /* beside the colour bar */
    const float *values;           /* [rows, cols], row-major; NaN is drawn grey */
    uint32_t rows, cols;
    plot_colormap colormap;
    /* Colour limits; lo >= hi: from the data (diverging: -max|v| .. +max|v|). */
    float lo, hi;
} plot_heatmap;

typedef struct plot_series {
    const char *name;
    const float *y; /* one value per x; NaN values are left out */
} plot_series;

typedef struct plot_panel {
    const char *title, *x_label, *y_label;
    const float *x; /* [n], increasing */
    uint32_t n;
    int integer_x;  /* ticks on whole numbers only (epochs) */
    plot_series series[PLOT_MAX_SERIES];
    uint32_t series_count;
    /* y limits; lo >= hi: from the data with a margin */
    float y_lo, y_hi;
} plot_panel;

/* The colour of t in [0, 1] on a colour map, as sRGB components in [0, 1]. */
void plot_colormap_rgb(plot_colormap map, double t, double rgb[3]);

/* Writes a heatmap with a colour bar to `path` (PLOT_WIDTH x PLOT_HEIGHT). */
enn_status plot_heatmap_png(const char *path, const plot_heatmap *heatmap);
/* Writes 1..PLOT_MAX_PANELS line charts side by side under one title. */
enn_status plot_lines_png(const char *path, const char *title, const plot_panel *panels, uint32_t panel_count);

#endif
