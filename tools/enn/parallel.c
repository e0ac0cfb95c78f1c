/* See parallel.h. */
#include "parallel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ENN_HAVE_MPI
#include <mpi.h>
#endif

/* Variables that Open MPI's, MPICH's (Hydra) and Slurm's launchers (PMI, PMIx) set. */
static int launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int parallel_init(parallel *p)
{
    *p = (parallel){.rank = 0, .size = 1, .local_rank = 0, .started = 0};
    if (!launched_by_mpi()) return 0;
#ifdef ENN_HAVE_MPI
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "enn train: MPI_Init failed\n");
        return -1;
    }
    p->started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &p->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &p->size);
    /* The processes on this machine: those that can share memory with this one. */
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, p->rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_rank(local, &p->local_rank);
        MPI_Comm_free(&local);
    }
    return 0;
#else
    fprintf(stderr, "enn train: started by an MPI launcher, but this enn was built without MPI "
                    "(install libopenmpi-dev and rebuild)\n");
    return -1;
#endif
}

void parallel_finish(parallel *p, int failed)
{
#ifdef ENN_HAVE_MPI
    if (!p->started) return;
    if (failed && p->size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
    p->started = 0;
#else
    (void)p;
    (void)failed;
#endif
}

const char *parallel_device(const parallel *p, char *buf, size_t size)
{
    const char *chosen = getenv("ENN_DEVICE");
    if (p->size < 2 || (chosen && chosen[0])) return NULL;   /* ENN_DEVICE: the user's choice stands */
    enn_device_info infos[16];
    uint32_t count = 0, gpus[16], n = 0;
    if (enn_list_devices(infos, 16, &count) != ENN_OK) return NULL;
    for (uint32_t i = 0; i < count && i < 16; i++)
        if (infos[i].type == ENN_DEVICE_DISCRETE_GPU) gpus[n++] = infos[i].index;
    if (n < 2) return NULL;   /* one GPU (or none): every process takes the default device */
    snprintf(buf, size, "%u", gpus[(uint32_t)p->local_rank % n]);
    return buf;
}

enn_status parallel_broadcast_parameters(const parallel *p, enn_model *model)
{
#ifdef ENN_HAVE_MPI
    if (p->size < 2) return ENN_OK;
    for (uint32_t i = 0; i < enn_model_parameter_tensors(model); i++) {
        enn_tensor_desc d;
        enn_status s = enn_model_parameter_desc(model, i, &d);
        if (s != ENN_OK) return s;
        size_t n = (size_t)d.shape[0] * (d.rank == 2 ? d.shape[1] : 1);
        float *v = malloc(n * sizeof *v);
        if (!v) {
            fprintf(stderr, "enn train: out of memory for %s\n", d.name);
            return ENN_ERROR_OUT_OF_HOST_MEMORY;
        }
        s = enn_model_read(model, d.name, v, n);
        if (s == ENN_OK) {
            MPI_Bcast(v, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
            s = enn_model_write(model, d.name, v, n);
        }
        free(v);
        if (s != ENN_OK) return s;
    }
#else
    (void)p;
    (void)model;
#endif
    return ENN_OK;
}

enn_status parallel_train_step(const parallel *p, enn_model *model, uint32_t parts, parallel_part_fn part, void *user,
                               float *gradients, float *scratch, enn_step_result *result, int *flags, int nflags)
{
    size_t n = (size_t)enn_model_gradient_count(model);
    double stats[3 + 8] = {0};   /* sum of loss x counted, correct, counted; the flags */
    enn_status s;
    memset(gradients, 0, n * sizeof *gradients);
    for (uint32_t j = 0; j < parts; j++) {
        enn_batch b = {0};
        enn_step_result r;
        if ((s = part(user, j, &b)) != ENN_OK) return s;
        if (!b.size) continue;
        if ((s = enn_model_compute_gradients(model, &b, NULL, &r)) != ENN_OK) return s;
        /* Each part's gradient is of its mean loss: weight it by what it counted. */
        float *g = parts > 1 ? scratch : gradients;
        if ((s = enn_model_read_gradients(model, g, n)) != ENN_OK) return s;
        if (g == gradients)
            for (size_t k = 0; k < n; k++) gradients[k] *= (float)r.counted;
        else
            for (size_t k = 0; k < n; k++) gradients[k] += (float)r.counted * g[k];
        stats[0] += (double)r.loss * r.counted;
        stats[1] += r.correct;
        stats[2] += r.counted;
    }
    if (nflags > 8) nflags = 8;
    for (int i = 0; i < nflags; i++) stats[3 + i] = flags[i] ? 1.0 : 0.0;
#ifdef ENN_HAVE_MPI
    if (p->size > 1) {
        MPI_Allreduce(MPI_IN_PLACE, gradients, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, stats, 3 + nflags, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
#else
    (void)p;
#endif
    float scale = stats[2] > 0 ? (float)(1.0 / stats[2]) : 0.0f;
    for (size_t k = 0; k < n; k++) gradients[k] *= scale;
    if ((s = enn_model_write_gradients(model, gradients, n)) != ENN_OK) return s;
    if ((s = enn_model_apply_gradients(model)) != ENN_OK) return s;
    *result = (enn_step_result){.loss = stats[2] > 0 ? (float)(stats[0] / stats[2]) : 0.0f,
                                .correct = (uint32_t)stats[1], .counted = (uint32_t)stats[2]};
    for (int i = 0; i < nflags; i++) flags[i] = stats[3 + i] > 0;
    return ENN_OK;
}

enn_dataset parallel_dataset_part(const parallel *p, const enn_dataset *ds)
{
    size_t from = ds->n * (size_t)p->rank / (size_t)p->size, to = ds->n * (size_t)(p->rank + 1) / (size_t)p->size;
    enn_dataset part = *ds;
    part.n = to - from;
    if (part.x) part.x += from * ds->T * ds->d;
    if (part.labels) part.labels += from;
    if (part.y) part.y += from * ds->k;
    if (part.tokens) part.tokens += from * ds->T;
    if (part.targets) part.targets += from * ds->T;
    return part;
}

void parallel_sum_metrics(const parallel *p, metric_sum *sum, confusion *matrix, volatile sig_atomic_t *stopped)
{
#ifdef ENN_HAVE_MPI
    if (p->size < 2) return;
    double tally[4] = {sum->loss_sum, (double)sum->correct, (double)sum->counted, stopped && *stopped ? 1.0 : 0.0};
    MPI_Allreduce(MPI_IN_PLACE, tally, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *sum = (metric_sum){.loss_sum = tally[0], .correct = (uint64_t)tally[1], .counted = (uint64_t)tally[2]};
    if (stopped && tally[3] > 0) *stopped = 1;
    if (matrix && matrix->counts)
        MPI_Allreduce(MPI_IN_PLACE, matrix->counts, (int)((size_t)matrix->classes * matrix->classes), MPI_UINT64_T,
                      MPI_SUM, MPI_COMM_WORLD);
#else
    (void)p;
    (void)sum;
    (void)matrix;
    (void)stopped;
#endif
}

void parallel_broadcast(const parallel *p, double *v, int n)
{
#ifdef ENN_HAVE_MPI
    if (p->size > 1) MPI_Bcast(v, n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
#else
    (void)p;
    (void)v;
    (void)n;
#endif
}

void parallel_gather_u64(const parallel *p, uint64_t v, uint64_t *all)
{
#ifdef ENN_HAVE_MPI
    if (p->size > 1) {
        MPI_Gather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        return;
    }
#else
    (void)p;
#endif
    all[0] = v;
}
