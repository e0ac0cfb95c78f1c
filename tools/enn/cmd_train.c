/* enn train: trains a model on a data set with the protocol of the paper's experiments
 * (ENN-SPEC.md), logs every epoch, keeps the best weights, and prints the test metrics.
 *
 *   lock --out (run_lock.c: one enn train at a time writes a run), see what it holds
 *   load the data, hold out the validation part        train_data.c
 *   per epoch: shuffled batches -> enn_model_train_step, progress bar
 *              validation loss/accuracy, trace monitor  train_loop.c
 *              metrics.csv / metrics.jsonl (train_report.c), early stopping, reduce-on-plateau
 *   restore the best weights, save them, evaluate on the test set
 *   after every epoch and when cut short: last.safetensors + last.json (train_state.c),
 *   from which --resume goes on where the run stopped
 *
 * Under mpirun (parallel.c), every process trains a copy of the model on its share of
 * each batch and the gradients are averaged before each update; the processes evaluate a
 * part of the validation and test sets each and sum the tallies; process 0 alone prints
 * and writes files, and its numbers drive early stopping everywhere.
 * --accumulate K: each process's share as K micro-batches in turn (parallel.c too). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "enn.h"
#include "enn_data.h"
#include "metrics.h"
#include "parallel.h"
#include "progress.h"
#include "run_lock.h"
#include "schedule.h"
#include "train_data.h"
#include "train_loop.h"
#include "train_options.h"
#include "train_report.h"
#include "train_state.h"
#include "class_plots.h"
#include "trace_monitor.h"

/* Ctrl-C: finish the current batch, save, stop. A second Ctrl-C ends the process.
 * Data parallel: a request, which the next step's all-reduce turns into `interrupted`
 * on every process at once (a process leaving alone would leave the others waiting). */
static volatile sig_atomic_t interrupted, interrupt_requested, data_parallel;
static void on_interrupt(int sig)
{
    interrupt_requested = 1;
    if (!data_parallel) interrupted = 1;
    signal(sig, SIG_DFL);
}

/* Whether dir holds what an earlier `enn train` wrote and a new run would replace. */
static int holds_a_run(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/last.json", dir);
    if (access(path, F_OK) == 0) return 1;
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    if (access(path, F_OK) == 0) return 1;
    snprintf(path, sizeof path, "%s/best.safetensors", dir);
    return access(path, F_OK) == 0;
}

/* Makes this process out_dir's only writer (its lock, held until the run ends), then
 * looks at what is there, which no other enn train can change from now on: --resume
 * needs a run, a fresh start must not replace one, and a killed run's half-written
 * files go. `made` gets the outermost directory this made ("" for none). Returns 0, or
 * the exit status after printing why not. */
static int claim_out_dir(const train_options *o, run_lock *lock, char *made, size_t made_size)
{
    char state_path[1200], json_path[1200];
    snprintf(state_path, sizeof state_path, "%s/last.safetensors", o->out_dir);
    snprintf(json_path, sizeof json_path, "%s/last.json", o->out_dir);
    if (!o->resume && make_dirs_noting(o->out_dir, made, made_size)) return 1;
    /* --resume creates nothing: no directory, no run (said below). */
    if (access(o->out_dir, F_OK) == 0 && run_lock_take(lock, o->out_dir)) return 1;
    if (o->resume && access(state_path, F_OK) != 0 && access(json_path, F_OK) != 0) {
        fprintf(stderr, "enn train: --resume: no run to go on with: %s does not exist\n", state_path);
        return 1;
    }
    if (!o->resume && !o->overwrite && holds_a_run(o->out_dir)) {
        /* Hours of training are not replaced by a new run's first epoch by accident. */
        fprintf(stderr, "enn train: %s holds a run (last.json or best.safetensors): --resume goes on with it, "
                        "--overwrite starts afresh there, or --out names another directory\n", o->out_dir);
        return 1;
    }
    remove_stale_temporaries(o->out_dir); /* a killed run's half-written files */
    return 0;
}

/* Writes a checkpoint (parameters, Adam moments, configuration, and the run's
 * data layout for enn eval); only process 0 writes under data parallelism. Returns 0,
 * or -1 after printing the problem. */
static int save_checkpoint(const parallel *par, const train_options *o, enn_model *model, const char *path)
{
    if (par->rank != 0) return 0;
    char layout[512];
    enn_metadata meta;
    uint32_t count = train_data_layout_entry(o, layout, &meta);
    if (enn_model_save_with_metadata(model, path, &meta, count)) {
        fprintf(stderr, "enn train: saving %s: %s\n", path, enn_last_error());
        return -1;
    }
    return 0;
}

/* The key of the loop's state in last.safetensors' metadata. */
#define STATE_KEY "enn.train_state"

/* The exact state (parameters, Adam moments, counters) and where the loop stands, for
 * --resume, in one atomic save: the state goes into the checkpoint's metadata (a crash
 * can leave no checkpoint and state of different moments), and into last.json for
 * people and scripts. Process 0 writes, with every process's pass count (a collective
 * call) and the logs' sizes. Returns 0, or -1 after printing the problem. */
static int save_last(const parallel *par, const train_options *o, enn_model *model, train_state *state,
                     double seconds, FILE *csv, FILE *json)
{
    parallel_gather_u64(par, enn_model_pass_count(model), state->passes);
    if (par->rank != 0) return 0;
    state->seconds = seconds;
    state->updates = enn_model_step_count(model);
    long csv_at = csv ? ftell(csv) : 0, json_at = json ? ftell(json) : 0;
    state->csv_bytes = csv_at > 0 ? (uint64_t)csv_at : 0;
    state->jsonl_bytes = json_at > 0 ? (uint64_t)json_at : 0;
    char path[1200], *text = train_state_to_text(state);
    if (!text) return -1;
    snprintf(path, sizeof path, "%s/last.safetensors", o->out_dir);
    char layout[512];
    enn_metadata meta[2] = {{STATE_KEY, text}};
    uint32_t count = 1 + train_data_layout_entry(o, layout, &meta[1]);
    enn_status s = enn_model_save_with_metadata(model, path, meta, count);
    int rc = 0;
    if (s != ENN_OK) {
        fprintf(stderr, "enn train: saving %s: %s\n", path, enn_last_error());
        rc = -1;
    } else {
        snprintf(path, sizeof path, "%s/last.json", o->out_dir);
        rc = train_state_save(path, text);
    }
    free(text);
    return rc;
}

/* The state of the run in dir: from last.safetensors' metadata, or (runs of earlier
 * versions) from last.json. Returns 0, or -1 after printing the problem. */
static int load_last_state(const char *dir, train_state *saved)
{
    char path[1200], *text = NULL;
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    if (access(path, F_OK) == 0 && enn_checkpoint_metadata(path, STATE_KEY, &text) != ENN_OK) {
        fprintf(stderr, "enn train: --resume: %s\n", enn_last_error());
        return -1;
    }
    if (text) {
        int rc = train_state_parse(text, path, saved);
        free(text);
        return rc;
    }
    snprintf(path, sizeof path, "%s/last.json", dir);
    return train_state_load(path, saved);
}

/* Micro-batch `part` of this process's share of the batch at order[first, first + count):
 * the batch cut into `shards` = processes x micro-batches near-equal runs, process-major. */
typedef struct share_plan {
    batch_buffers *buf;
    const enn_dataset *ds;
    const size_t *order;
    size_t first;
    uint32_t count, shards, shard0;   /* shard0: this process's first shard */
} share_plan;

static enn_status gather_part(void *user, uint32_t part, enn_batch *out)
{
    const share_plan *p = user;
    uint32_t k = p->shard0 + part;
    uint32_t from = (uint32_t)((uint64_t)p->count * k / p->shards), to = (uint32_t)((uint64_t)p->count * (k + 1) / p->shards);
    *out = (enn_batch){0};
    return to > from ? batch_gather(p->buf, p->ds, p->order, p->first + from, to - from, out) : ENN_OK;
}

/* Loss and accuracy (and the confusion matrix) over a whole set, each process taking its
 * part of it; every process gets the totals. `label`: progress lines, process 0's. */
static enn_status evaluate_in_parts(const parallel *par, enn_model *model, const enn_dataset *ds, batch_buffers *buf,
                                    metric_sum *sum, confusion *matrix, const char *label, int plain,
                                    volatile sig_atomic_t *stop)
{
    enn_dataset part = parallel_dataset_part(par, ds);
    enn_status s = evaluate_dataset(model, &part, buf, sum, matrix, par->rank == 0 ? label : NULL, plain, stop, NULL);
    if (s == ENN_OK) parallel_sum_metrics(par, sum, matrix, stop);
    return s;
}

int cmd_train(int argc, char **argv)
{
    train_options o;
    train_options_init(&o);
    int parsed = train_options_parse(&o, argc, argv, 0);
    if (parsed) return parsed > 0 ? 0 : 2;
    if (o.lr_schedule != LR_CONSTANT && !(o.min_learning_rate > 0.0f)) {
        fprintf(stderr, "enn train: --lr-schedule ends at --min-lr, which must be above 0 (Adam's rate is positive)\n");
        return 2;
    }
    if (o.accumulate > o.batch) {
        fprintf(stderr, "enn train: --accumulate %u is more micro-batches than the batch of %u has samples\n",
                o.accumulate, o.batch);
        return 2;
    }
    if (o.resume && o.overwrite) {
        fprintf(stderr, "enn train: --resume goes on with the run in %s, --overwrite replaces it: one or the other\n",
                o.out_dir);
        return 2;
    }
    parallel par;
    if (parallel_init(&par)) return 1;
    int lead = par.rank == 0;   /* prints, validates, writes files */
    if (!lead && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "enn train: process %d cannot silence its output\n", par.rank);
        parallel_finish(&par, 1);
        return 1;
    }
    /* Before the data is read: a directory another run writes, or one with no run to
     * resume, is a quick answer. Process 0 alone writes, and locks; its answer ends
     * every process, each leaving MPI in order. */
    run_lock lock = RUN_LOCK_NONE;
    char made_dir[1024] = "";
    double refused = lead ? claim_out_dir(&o, &lock, made_dir, sizeof made_dir) : 0;
    parallel_broadcast(&par, &refused, 1);
    if (refused) {
        run_lock_release(&lock);
        remove_made_dirs(o.out_dir, made_dir, RUN_LOCK_NAME);
        parallel_finish(&par, 0);
        return (int)refused;
    }

    int rc = 1;
    /* The run's last.safetensors exists (from this run or the one resumed), holding the
     * state after epoch last_epoch: what a failure tells the user to go on from. */
    int have_last = 0;
    uint32_t last_epoch = 0;
    train_data data;
    enn_dataset val = {0};
    enn_context *ctx = NULL;
    enn_model *model = NULL;
    batch_buffers train_buf = {0}, eval_buf = {0}, sample_buf = {0};
    trace_monitor *mon = NULL; /* the trace monitor's pictures (ENN) */
    enn_batch sample = {0};
    weights best = {0};
    confusion matrix = {0};
    size_t *order = NULL;
    float *gradients = NULL, *scratch = NULL;   /* shares: the step's gradients, a part's */
    FILE *csv = NULL, *json = NULL, *quiet = NULL;
    train_state state = {0}, saved = {0};   /* where the loop stands; the run resumed */
    double t_start = now_seconds();

    if (train_data_load(&o, 1, &data)) {
        run_lock_release(&lock);
        remove_made_dirs(o.out_dir, made_dir, RUN_LOCK_NAME); /* bad data: no empty run left */
        parallel_finish(&par, 1);
        return 1;
    }
    if (o.shuffle_split && enn_dataset_shuffle(&data.train, o.model.values.seed)) goto fail;
    if (enn_dataset_split(&data.train, o.validation_split, &val)) goto fail;
    printf("data: %s, %zu training, %zu validation, %zu test samples of [T=%u, d=%u]%s\n",
           data_kind_name(o.data.kind), data.train.n, val.n, data.test.n, data.train.T,
           data.train.tokens ? 1 : data.train.d, o.quick ? " (--quick subset)" : "");

    char device_index[16];
    enn_context_options copt = {.device = o.device[0] ? o.device : parallel_device(&par, device_index, sizeof device_index)};
    if (enn_context_create(&copt, &ctx)) goto fail;
    enn_capabilities caps = {0};
    enn_context_capabilities(ctx, &caps);
    printf("device: %s\n", caps.device_name);

    enn_model_config config;
    if (train_options_model_config(&o, data.head, data.train.tokens ? 1 : data.train.d, data.train.T, data.outputs,
                                   &config))
        goto done;
    if (config.cell.stateful && o.accumulate > 1) {
        /* The micro-batches of one batch would hand each other their rows' state. */
        fprintf(stderr, "enn train: --stateful carries each row's state into the next batch; with --accumulate the "
                        "next micro-batch holds other samples: use one or the other\n");
        rc = 2;
        goto done;
    }
    /* A batch cut into processes x micro-batches: the model holds one micro-batch (memory),
     * and evaluates in batches of that size too. */
    uint32_t shards = (uint32_t)par.size * o.accumulate;
    config.max_batch = (o.batch + shards - 1) / shards;
    /* Data parallel: each process its own noise and dropout streams, rank 0's weights. */
    config.seed += (uint64_t)par.rank;
    if (enn_model_create(ctx, &config, &model) || parallel_broadcast_parameters(&par, model)) goto fail;
    config.seed -= (uint64_t)par.rank;
    /* The run's identity, written with every last.json and checked by --resume. */
    snprintf(state.data, sizeof state.data, "%s", data_kind_name(o.data.kind));
    state.train_samples = data.train.n;
    state.data_crc32 = train_data_crc32(&val, train_data_crc32(&data.train, 0));
    state.have_data_crc32 = 1;
    state.batch = o.batch;
    state.accumulate = o.accumulate;
    state.processes = (uint32_t)par.size;
    state.seed = o.model.values.seed;
    state.lr_schedule = o.lr_schedule;
    state.warmup = o.warmup;
    state.n_passes = (uint32_t)par.size;
    if (!(state.passes = calloc(state.n_passes, sizeof *state.passes))) {
        fprintf(stderr, "enn train: out of memory\n");
        goto done;
    }
    if (enn_model_config_to_json(&config, &state.config)) goto fail;
    print_model(&config, &data);
    const enn_optimizer_config *adam = &config.optimizer;
    /* A schedule sets the rate of every update and replaces reduce-on-plateau. */
    size_t batches = enn_batch_count(data.train.n, o.batch, 0);
    lr_schedule schedule = {(lr_shape)o.lr_schedule, adam->learning_rate, o.min_learning_rate, o.warmup,
                            (uint64_t)o.epochs * batches};
    if (schedule.shape != LR_CONSTANT) o.plateau = 0;
    static const char *const shapes[] = {"constant", "cosine", "linear"};
    printf("training: %u epochs max, batch %u, Adam lr %g, clip %s %g, early stopping %s, reduce-on-plateau %s",
           o.epochs, o.batch, adam->learning_rate,
           adam->clip == ENN_CLIP_NONE ? "none" : adam->clip == ENN_CLIP_GLOBAL ? "global" : "per-tensor",
           adam->clip_norm, o.early_stopping ? "on" : "off", o.plateau ? "on" : "off");
    if (schedule.shape != LR_CONSTANT)
        printf(", lr schedule %s (warm-up %llu updates, down to %g after %llu)", shapes[schedule.shape],
               (unsigned long long)schedule.warmup, schedule.min_lr, (unsigned long long)schedule.total);
    printf("\n");
    if (par.size > 1)
        printf("data parallel: %d processes (MPI), each batch of %u split between them, gradients averaged\n",
               par.size, o.batch);
    if (o.accumulate > 1)
        printf("gradient accumulation: %u micro-batches of up to %u samples per %s\n", o.accumulate,
               config.max_batch, par.size > 1 ? "process and batch" : "batch");
    fflush(stdout);

    size_t grad_floats = enn_model_gradient_count(model);
    if (batch_buffers_init(&train_buf, &data.train, &config, config.max_batch) ||
        batch_buffers_init(&eval_buf, &data.train, &config, config.max_batch) ||
        !(order = malloc(data.train.n * sizeof *order)) ||
        (shards > 1 && !(gradients = malloc(grad_floats * sizeof *gradients))) ||
        (o.accumulate > 1 && !(scratch = malloc(grad_floats * sizeof *scratch))) ||
        (!lead && !(quiet = fopen("/dev/null", "w")))) {
        fprintf(stderr, "enn train: out of memory for the batch buffers\n");
        goto done;
    }
    char best_path[1200], last_path[1200];
    snprintf(best_path, sizeof best_path, "%s/best.safetensors", o.out_dir);
    snprintf(last_path, sizeof last_path, "%s/last.safetensors", o.out_dir);
    if (o.resume) {
        /* The run in out_dir: its loop state, its best weights (for restore-best), then
         * its exact last state (parameters, Adam moments, step and pass counters, the
         * learning rate). Every process reads them. */
        /* (A warning only: a layout that cannot be read is said, and the state check
         * below decides.) */
        if (o.data.kind == DATA_WIKITEXT && par.rank == 0 && access(last_path, F_OK) == 0)
            (void)train_data_check_words(last_path);
        if (load_last_state(o.out_dir, &saved) || train_state_check(&saved, &state)) goto done;
        if (saved.batches_done >= enn_batch_count(data.train.n, o.batch, 0)) {
            fprintf(stderr, "enn train: --resume: %s/last.json says %llu batches of epoch %u are done, but an epoch "
                            "has %zu\n", o.out_dir, (unsigned long long)saved.batches_done, saved.epoch,
                    enn_batch_count(data.train.n, o.batch, 0));
            goto done;
        }
        if (saved.stopped_early || saved.epoch > o.epochs) {
            if (saved.stopped_early)
                printf("the run in %s stopped early after epoch %u: nothing to resume\n", o.out_dir, saved.last_epoch);
            else
                printf("the run in %s has done its %u epochs: nothing to resume (a larger --epochs goes on)\n",
                       o.out_dir, saved.last_epoch);
            rc = 0;
            goto done;
        }
        if (saved.have_best && o.restore_best &&
            (enn_model_load_into(model, best_path) || weights_take(model, &best)))
            goto fail;
        if (enn_model_load_into(model, last_path)) goto fail;
        if (enn_model_step_count(model) != saved.updates) {
            /* (A run of an earlier version wrote the checkpoint, then last.json: a crash
             * between the two.) */
            fprintf(stderr, "enn train: --resume: %s holds %llu updates but the run's state speaks of %llu: the "
                            "two are from different moments\n", last_path,
                    (unsigned long long)enn_model_step_count(model), (unsigned long long)saved.updates);
            goto done;
        }
        /* The checkpoint holds process 0's pass count; every other process takes its own
         * back, so that it draws the noise and dropout it would have drawn. */
        if (saved.n_passes) {
            if (saved.passes[0] != enn_model_pass_count(model)) {
                fprintf(stderr, "enn train: --resume: %s and the run's state are from different moments (pass "
                                "counts %llu and %llu)\n", last_path,
                        (unsigned long long)enn_model_pass_count(model), (unsigned long long)saved.passes[0]);
                goto done;
            }
            if (enn_model_set_pass_count(model, saved.passes[par.rank])) goto fail;
        }
        printf("resumed %s: epoch %u after %llu batches, %llu updates\n", o.out_dir, saved.epoch,
               (unsigned long long)saved.batches_done, (unsigned long long)enn_model_step_count(model));
    }
    if (lead) {
        csv = open_log(o.out_dir, "metrics.csv",
                       "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,seconds,"
                       "trace_mean_abs,trace_max,trace_min,trace_std,trace_sparsity", o.resume, saved.csv_bytes);
        json = open_log(o.out_dir, "metrics.jsonl", NULL, o.resume, saved.jsonl_bytes);
        if (!csv || !json) goto done;
    }
    if (lead && data.vocab) {
        char vocab_path[1200];
        snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", o.out_dir);
        if (enn_vocab_save(data.vocab, vocab_path)) goto fail;
    }

    struct sigaction sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    data_parallel = par.size > 1;
    sigaction(SIGINT, &sa, NULL);

    const enn_dataset *monitor_set = val.n ? &val : &data.train;
    /* The trace monitor's pictures: one fixed sample batch, evaluated after every epoch. */
    if (lead && o.plots && config.kind == ENN_MODEL_ENN) {
        char plot_dir[sizeof o.out_dir + 8];
        snprintf(plot_dir, sizeof plot_dir, "%s/plots", o.out_dir);
        uint32_t most = config.max_batch < 64 ? config.max_batch : 64;
        uint32_t count = (uint32_t)(monitor_set->n < most ? monitor_set->n : most);
        if (batch_buffers_init(&sample_buf, monitor_set, &config, count) ||
            batch_gather(&sample_buf, monitor_set, NULL, 0, count, &sample) ||
            trace_monitor_create(plot_dir, NULL, &mon) ||
            (!o.resume && trace_monitor_capture_initial(mon, model, &sample)))
            goto fail;
    }
    early_stopping stopper;
    plateau lr_plateau;
    early_stopping_init(&stopper, o.patience);
    plateau_init(&lr_plateau, o.plateau_patience, o.plateau_factor, o.min_learning_rate);
    uint32_t epoch = 0, first_epoch = 1;
    int timed_out = 0, have_best = 0, partial = 0;
    have_last = o.resume;
    if (o.resume) {
        first_epoch = saved.epoch;
        last_epoch = saved.last_epoch;
        have_best = saved.have_best;
        stopper.best = saved.stopper.best;
        stopper.best_epoch = saved.stopper.best_epoch;
        stopper.wait = saved.stopper.wait;
        lr_plateau.best = saved.lr_plateau.best;
        lr_plateau.wait = saved.lr_plateau.wait;
    }
    for (epoch = first_epoch; epoch <= o.epochs && !interrupted && !timed_out; epoch++) {
        double t0 = now_seconds();
        enn_permutation(order, data.train.n, o.model.values.seed * 0x9E3779B97F4A7C15ull + epoch);
        char label[32];
        snprintf(label, sizeof label, "epoch %u/%u", epoch, o.epochs);
        progress bar;
        progress_begin(&bar, lead ? stderr : quiet, o.plain, label, batches);
        /* A resumed epoch goes on after the batches it had done, with their tallies. */
        int resumed = o.resume && epoch == saved.epoch;
        metric_sum train_sum = resumed ? saved.train_sum : (metric_sum){0};
        size_t done_batches = resumed ? (size_t)saved.batches_done : 0;
        for (size_t i = done_batches; i < batches && !interrupted && !timed_out; i++) {
            size_t first = i * o.batch;
            uint32_t count = (uint32_t)(data.train.n - first < o.batch ? data.train.n - first : o.batch);
            enn_batch batch = {0};
            enn_step_result r;
            if (schedule.shape != LR_CONSTANT &&
                enn_model_set_learning_rate(model, lr_schedule_at(&schedule, enn_model_step_count(model))))
                goto fail;
            if (shards > 1) {
                /* This process's share of the batch, in micro-batches; all processes stop together. */
                share_plan plan = {&train_buf, &data.train, order, first, count, shards, (uint32_t)par.rank * o.accumulate};
                int flags[2] = {interrupt_requested, o.max_time > 0 && now_seconds() - t_start > o.max_time};
                if (parallel_train_step(&par, model, o.accumulate, gather_part, &plan, gradients, scratch, &r, flags, 2))
                    goto fail;
                if (flags[0]) interrupted = 1;
                timed_out = flags[1];
            } else if (batch_gather(&train_buf, &data.train, order, first, count, &batch) ||
                       enn_model_train_step(model, &batch, &r)) {
                goto fail;
            }
            if (!isfinite(r.loss)) {
                progress_end(&bar);
                fprintf(stderr, "enn train: the loss is %g at epoch %u, batch %zu: stopping\n", r.loss, epoch, i + 1);
                goto done;
            }
            metric_add(&train_sum, r.loss, r.correct, r.counted);
            done_batches++;
            progress_update(&bar, i + 1, count, metric_loss(&train_sum),
                            data.head == ENN_HEAD_REGRESSOR ? NAN : metric_accuracy(&train_sum));
            if (shards == 1 && o.max_time > 0 && now_seconds() - t_start > o.max_time) timed_out = 1;
        }
        progress_end(&bar);
        if (done_batches < batches) {
            printf("epoch %u: %s after %zu of %zu batches\n", epoch, interrupted ? "interrupted" : "time limit reached",
                   done_batches, batches);
            /* Ctrl-C: stop now (--resume goes on with this epoch's next batch). Time
             * limit: validate this shorter epoch like any other, so that what it learned
             * counts when the best epoch is chosen (--resume goes on with the next epoch). */
            if (interrupted || !done_batches) {
                partial = done_batches > 0; /* the weights moved on from the last epoch's */
                state.epoch = epoch;
                state.batches_done = done_batches;
                state.train_sum = train_sum;
                state.stopper = stopper;
                state.lr_plateau = lr_plateau;
                state.have_best = have_best;
                state.last_epoch = last_epoch;
                state.stopped_early = 0;
                break;
            }
        }

        epoch_record rec = {.epoch = epoch, .train_loss = metric_loss(&train_sum),
                            .train_acc = data.head == ENN_HEAD_REGRESSOR ? NAN : metric_accuracy(&train_sum),
                            .val_loss = NAN, .val_acc = NAN, .lr = enn_model_learning_rate(model)};
        if (val.n) {
            metric_sum val_sum;
            if (evaluate_in_parts(&par, model, &val, &eval_buf, &val_sum, NULL, "validation", o.plain, NULL)) goto fail;
            rec.val_loss = metric_loss(&val_sum);
            if (data.head != ENN_HEAD_REGRESSOR) rec.val_acc = metric_accuracy(&val_sum);
        }
        /* Process 0's numbers decide early stopping and the learning rate everywhere (the
         * sums are the same on every process; this makes sure of it). */
        double shared[2] = {rec.val_loss, rec.val_acc};
        parallel_broadcast(&par, shared, 2);
        rec.val_loss = shared[0];
        rec.val_acc = shared[1];
        rec.have_trace = lead && config.kind == ENN_MODEL_ENN;
        if (rec.have_trace && mon) {
            trace_epoch_metrics em = {rec.train_loss, rec.train_acc, rec.val_loss, rec.val_acc};
            if (trace_monitor_epoch(mon, epoch, model, &sample, &em, &rec.trace)) goto fail;
        } else if (rec.have_trace && trace_sample_stats(model, monitor_set, &eval_buf, &rec.trace)) {
            goto fail;
        }
        rec.seconds = now_seconds() - t0;

        printf("epoch %u/%u: loss %.4f", epoch, o.epochs, rec.train_loss);
        if (!isnan(rec.train_acc)) printf(" acc %.4f", rec.train_acc);
        if (val.n) printf(" | val loss %.4f", rec.val_loss);
        if (!isnan(rec.val_acc)) printf(" acc %.4f", rec.val_acc);
        printf(" | lr %.3g | %.1f s", rec.lr, rec.seconds);
        if (rec.have_trace)
            printf(" | trace mean|H| %.4g max %.4g min %.4g std %.4g sparsity %.3f", rec.trace.mean_abs,
                   rec.trace.max, rec.trace.min, rec.trace.std, rec.trace.sparsity);
        printf("\n");
        fflush(stdout);
        if (log_epoch(csv, json, &rec)) goto done;
        last_epoch = epoch;

        /* Early stopping and reduce-on-plateau watch the validation loss (the training
         * loss when nothing is held out), as Keras's callbacks do. */
        double monitored = val.n ? rec.val_loss : rec.train_loss;
        int stop = 0;
        if (early_stopping_update(&stopper, epoch, monitored, &stop)) {
            if (o.restore_best && weights_take(model, &best)) goto fail;
            have_best = 1;
            if (save_checkpoint(&par, &o, model, best_path)) goto done;
        }
        int stopping = o.early_stopping && stop;
        if (stopping)
            printf("early stopping: no improvement of the %s loss for %u epochs (best: epoch %u, %.4f)\n",
                   val.n ? "validation" : "training", stopper.wait, stopper.best_epoch, stopper.best);
        if (o.plateau && !stopping) {
            float lr = enn_model_learning_rate(model), next = plateau_update(&lr_plateau, monitored, lr);
            if (next != lr) {
                if (enn_model_set_learning_rate(model, next)) goto fail;
                printf("reduce-on-plateau: learning rate %.3g -> %.3g\n", lr, next);
            }
        }
        /* The next epoch's starting point, for --resume. */
        state.epoch = epoch + 1;
        state.batches_done = 0;
        state.train_sum = (metric_sum){0};
        state.stopper = stopper;
        state.lr_plateau = lr_plateau;
        state.have_best = have_best;
        state.last_epoch = epoch;
        state.stopped_early = stopping;
        if (save_last(&par, &o, model, &state, saved.seconds + now_seconds() - t_start, csv, json)) goto done;
        have_last = 1;
        if (stopping) break;
    }
    /* Cut short inside an epoch: the exact state (Adam moments too) and where the loop
     * stands go to last.safetensors and last.json, from which --resume goes on;
     * best.safetensors already holds the best finished epoch. */
    if (interrupted && partial) {
        if (save_last(&par, &o, model, &state, saved.seconds + now_seconds() - t_start, csv, json)) goto done;
        have_last = 1;
    }
    if ((interrupted || timed_out) && have_last)
        printf("saved %s (enn train ... --resume goes on from it)\n", last_path);
    if (o.restore_best && have_best && best.count && (partial || stopper.best_epoch != last_epoch)) {
        if (weights_restore(model, &best)) goto fail;
        printf("restored the weights of epoch %u (the lowest %s loss, %.4f)\n", stopper.best_epoch,
               val.n ? "validation" : "training", stopper.best);
    }
    if (interrupted) {
        printf("interrupted: test evaluation skipped\n");
        rc = 130;
        goto done;
    }

    if (data.test.n) {
        metric_sum test_sum;
        if (data.head == ENN_HEAD_CLASSIFIER && confusion_init(&matrix, data.outputs)) {
            fprintf(stderr, "enn train: out of memory for the confusion matrix\n");
            goto done;
        }
        /* Data parallel: an interrupt stops this process's part at once; the tallies' sum
         * tells the others. */
        volatile sig_atomic_t *stop = par.size > 1 ? &interrupt_requested : &interrupted;
        if (evaluate_in_parts(&par, model, &data.test, &eval_buf, &test_sum, matrix.counts ? &matrix : NULL, "test",
                              o.plain, stop))
            goto fail;
        if (*stop) interrupted = 1;
        if (interrupted) {
            printf("interrupted during the test evaluation\n");
            rc = 130;
            goto done;
        }
        print_test(&o, &data, &test_sum, &matrix);
        if (lead && matrix.counts && o.plots) {
            char plot_dir[sizeof o.out_dir + 8];
            snprintf(plot_dir, sizeof plot_dir, "%s/plots", o.out_dir);
            if (class_plots_write(plot_dir, &matrix, train_data_class_names(o.data.kind, matrix.classes)))
                fprintf(stderr, "enn train: could not draw the confusion matrix: %s\n", enn_last_error());
        }
    } else {
        printf("no test set (csv/npy: --test-data names one)\n");
    }
    const char *first_message = NULL;
    uint32_t messages = enn_context_validation_messages(ctx, &first_message);
    if (messages) {
        fprintf(stderr, "enn train: process %d: %u validation messages; the first: %s\n", par.rank, messages,
                first_message);
        goto done;
    }
    if (have_best) printf("best checkpoint: %s (epoch %u)\n", best_path, stopper.best_epoch);
    printf("total time %.1f s\n", now_seconds() - t_start);
    rc = 0;
    goto done;
fail:
    /* Under mpirun the failing process may not be process 0 (which then waits for it
     * until this one's MPI_Abort ends both): it names itself and gives the hint, as
     * every process knows what process 0 saved. */
    if (par.size > 1)
        fprintf(stderr, "enn train: process %d of %d: %s\n", par.rank, par.size, enn_last_error());
    else
        fprintf(stderr, "enn train: %s\n", enn_last_error());
    /* A lost device or a full one ends the run, not what it saved: say where to go on from. */
    if (have_last)
        fprintf(stderr, "enn train: %s holds the run as of epoch %u (enn train ... --resume goes on from it)\n",
                last_path, last_epoch);
done:
    if ((csv && fclose(csv)) | (json && fclose(json)) && rc == 0) {
        fprintf(stderr, "enn train: cannot write the metrics logs: %s\n", strerror(errno));
        rc = 1;
    }
    free(order);
    free(gradients);
    free(scratch);
    if (quiet) fclose(quiet);
    confusion_free(&matrix);
    train_state_free(&state);
    train_state_free(&saved);
    weights_free(&best);
    batch_buffers_free(&train_buf);
    batch_buffers_free(&eval_buf);
    batch_buffers_free(&sample_buf);
    trace_monitor_destroy(mon);
    enn_model_destroy(model);
    enn_context_destroy(ctx);
    enn_dataset_free(&val);
    train_data_free(&data);
    run_lock_release(&lock);   /* after the last write */
    if (rc) remove_made_dirs(o.out_dir, made_dir, RUN_LOCK_NAME); /* when nothing was written */
    parallel_finish(&par, rc != 0 && rc != 130);   /* 130: every process was interrupted */
    return rc;
}
