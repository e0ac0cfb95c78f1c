/* CSV of numbers (regression data, or class labels in one column): optional header, chosen
 * target columns, every row the same width. Errors give the line and the field. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/file.h"

/* Parses one field [s, e) as a finite number (surrounding blanks and one pair of double
 * quotes allowed). Returns 1 on success. */
static int parse_number(const char *s, const char *e, double *out)
{
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') s++, e--;
    if (s == e) return 0;
    char tmp[128];
    if ((size_t)(e - s) >= sizeof tmp) return 0;
    memcpy(tmp, s, (size_t)(e - s));
    tmp[e - s] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (*end != '\0' || !isfinite(v) || fabs(v) > FLT_MAX) return 0;   /* finite as a float too */
    *out = v;
    return 1;
}

/* Splits a line at the delimiter: field starts and ends into the arrays (up to cap);
 * returns the number of fields. */
static size_t split_fields(const char *s, const char *e, char delim, const char **starts, const char **ends, size_t cap)
{
    size_t n = 0;
    for (const char *f = s;;) {
        const char *g = f;
        while (g < e && *g != delim) g++;
        if (n < cap) starts[n] = f, ends[n] = g;
        n++;
        if (g == e) break;
        f = g + 1;
    }
    return n;
}

static void field_text(const char *s, const char *e, char *buf, size_t cap)
{
    size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if ((size_t)(e - s) > n && cap > 4) memcpy(buf + cap - 4, "...", 4);
}

enn_status enn_load_csv(const char *path, const enn_csv_options *options, enn_dataset *out)
{
    if (!out) return enn_error(ENN_ERROR_INVALID_ARGUMENT, "enn_load_csv: out is NULL");
    memset(out, 0, sizeof *out);
    enn_csv_options opt = options ? *options : (enn_csv_options){.header = -1};
    char delim = opt.delimiter ? opt.delimiter : ',';
    uint32_t T = opt.T ? opt.T : 1;
    if (opt.header < -1 || opt.header > 1)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: csv header option %d is not -1, 0 or 1", path ? path : "(null)", opt.header);
    if (opt.target_count && !opt.target_columns)
        return enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %u target columns but target_columns is NULL", path ? path : "(null)",
                         opt.target_count);

    uint8_t *buf;
    size_t size;
    ENN_TRY(enn_file_slurp(path, &buf, &size, NULL));
    const char *text = (const char *)buf;
    enn_status s = ENN_OK;
    float *values = NULL;
    size_t nvalues = 0, cap_values = 0, ncols = 0, rows = 0;
    const char **starts = NULL, **ends = NULL;
    int *is_target = NULL;
    int header_line = 0;

    if (size == 0) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: empty file (want rows of numbers)", path);
        goto done;
    }
    const void *nul = memchr(buf, 0, size);
    if (nul) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: not a text file: NUL byte at offset %td", path, (const uint8_t *)nul - buf);
        goto done;
    }
    size_t line_no = 0;
    for (size_t pos = enn_utf8_bom(buf, size); pos < size;) {
        const char *ls = text + pos, *le = memchr(ls, '\n', size - pos);
        if (!le) le = text + size;
        pos = (size_t)(le - text) + 1;
        line_no++;
        if (le > ls && le[-1] == '\r') le--;
        const char *q = ls;
        while (q < le && (*q == ' ' || *q == '\t')) q++;
        if (q == le) continue; /* blank line */

        size_t nf = split_fields(ls, le, delim, NULL, NULL, 0);
        if (!ncols) {
            ncols = nf;
            starts = malloc(ncols * sizeof *starts);
            ends = malloc(ncols * sizeof *ends);
            is_target = calloc(ncols, sizeof *is_target);
            if (!starts || !ends || !is_target) {
                s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory", path);
                goto done;
            }
            split_fields(ls, le, delim, starts, ends, ncols);
            int header = opt.header;
            if (header == -1) {
                double v;
                header = 0;
                for (size_t c = 0; c < ncols; c++)
                    if (!parse_number(starts[c], ends[c], &v)) header = 1;
            }
            if (header) {
                header_line = (int)line_no;
                continue;
            }
        }
        if (nf != ncols) {
            if (header_line)
                s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: ragged row: %zu fields, but the header (line %d) has %zu", path,
                              line_no, nf, header_line, ncols);
            else
                s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: ragged row: %zu fields, but the first row has %zu", path, line_no,
                              nf, ncols);
            goto done;
        }
        split_fields(ls, le, delim, starts, ends, ncols);
        if (nvalues + ncols > cap_values) {
            size_t next = cap_values ? cap_values * 2 : 1024;
            while (next < nvalues + ncols) next *= 2;
            float *grown = realloc(values, next * sizeof(float));
            if (!grown) {
                s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory at line %zu", path, line_no);
                goto done;
            }
            values = grown;
            cap_values = next;
        }
        for (size_t c = 0; c < ncols; c++) {
            double v;
            if (!parse_number(starts[c], ends[c], &v)) {
                char shown[48];
                field_text(starts[c], ends[c], shown, sizeof shown);
                s = enn_error(ENN_ERROR_FORMAT, "%s:%zu: field %zu '%s' is not a (finite) number", path, line_no, c + 1, shown);
                goto done;
            }
            values[nvalues++] = (float)v;
        }
        rows++;
    }
    if (rows == 0) {
        s = enn_error(ENN_ERROR_FORMAT, "%s: no rows of numbers%s", path, header_line ? " after the header" : "");
        goto done;
    }

    /* Targets: the chosen columns (default the last); features: all the others. */
    uint32_t k = opt.target_count ? opt.target_count : 1;
    for (uint32_t t = 0; t < k; t++) {
        long c = opt.target_count ? opt.target_columns[t] : -1;
        long resolved = c < 0 ? (long)ncols + c : c;
        if (resolved < 0 || resolved >= (long)ncols) {
            s = enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: target column %ld is outside the %zu columns", path, c, ncols);
            goto done;
        }
        if (is_target[resolved]) {
            s = enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: target column %ld is chosen twice", path, c);
            goto done;
        }
        is_target[resolved] = (int)t + 1;
    }
    if (opt.labels && k != 1) {
        s = enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: class labels come from one column, not %u", path, k);
        goto done;
    }
    size_t features = ncols - k;
    if (features == 0 || features % T != 0) {
        s = enn_error(ENN_ERROR_INVALID_ARGUMENT, "%s: %zu feature columns (of %zu, %u targets) cannot be split into T = %u steps",
                      path, features, ncols, k, T);
        goto done;
    }
    out->x = malloc(rows * features * sizeof(float));
    if (opt.labels) out->labels = malloc(rows * sizeof *out->labels);
    else out->y = malloc(rows * k * sizeof(float));
    if (!out->x || !(out->y || out->labels)) {
        enn_dataset_free(out);
        s = enn_error(ENN_ERROR_OUT_OF_HOST_MEMORY, "%s: out of host memory for %zu rows", path, rows);
        goto done;
    }
    uint32_t max_label = 0;
    for (size_t r = 0; r < rows; r++) {
        size_t f = 0;
        for (size_t c = 0; c < ncols; c++) {
            float v = values[r * ncols + c];
            if (!is_target[c]) {
                out->x[r * features + f++] = v;
            } else if (!opt.labels) {
                out->y[r * k + (size_t)(is_target[c] - 1)] = v;
            } else if (!(v >= 0.0f && v < 16777216.0f && v == floorf(v))) { /* exact in float */
                enn_dataset_free(out);
                s = enn_error(ENN_ERROR_FORMAT, "%s: row %zu: label %g in column %zu is not a class id (a whole number "
                              "from 0)", path, r + 1, v, c + 1);
                goto done;
            } else {
                out->labels[r] = (uint32_t)v;
                if ((uint32_t)v > max_label) max_label = (uint32_t)v;
            }
        }
    }
    out->n = rows;
    out->T = T;
    out->d = (uint32_t)(features / T);
    out->k = opt.labels ? 0 : k;
    out->num_classes = opt.labels ? max_label + 1 : 0;
    enn_error_clear();
done:
    free(buf);
    free(values);
    free(starts);
    free(ends);
    free(is_target);
    return s;
}
