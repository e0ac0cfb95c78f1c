/* See model_snapshot.h. */
#include "model_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

float *test_model_snapshot(enn_model *m, size_t extra, size_t *count)
{
    static const char *const prefixes[] = {"", "adam.m.", "adam.v."};
    size_t total = extra;
    for (uint32_t i = 0; i < enn_model_parameter_tensors(m); i++) {
        enn_tensor_desc d;
        ENN_ASSERT_OK(enn_model_parameter_desc(m, i, &d));
        total += 3 * (size_t)d.shape[0] * (d.rank == 2 ? d.shape[1] : 1);
    }
    float *all = malloc(total * sizeof *all), *p = all;
    cr_assert_not_null(all);
    for (int k = 0; k < 3; k++)
        for (uint32_t i = 0; i < enn_model_parameter_tensors(m); i++) {
            enn_tensor_desc d;
            ENN_ASSERT_OK(enn_model_parameter_desc(m, i, &d));
            size_t n = (size_t)d.shape[0] * (d.rank == 2 ? d.shape[1] : 1);
            char name[96];
            snprintf(name, sizeof name, "%s%s", prefixes[k], d.name);
            ENN_ASSERT_OK(enn_model_read(m, name, p, n));
            p += n;
        }
    *count = total;
    return all;
}

size_t test_first_difference(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof *a)) return i;
    return n;
}
