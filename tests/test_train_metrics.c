/* The metrics of `enn train` / `enn eval` (tools/enn/metrics.c) and its callbacks
 * (tools/enn/schedule.c) on cases small enough to work out by hand; each expected value
 * is derived in the comment beside it. */
#include <criterion/criterion.h>
#include <math.h>

#include "metrics.h"
#include "schedule.h"

/* Exact rationals computed in double: only rounding of the last bit separates them. */
#define NEAR(a, b) cr_assert(fabs((double)(a) - (double)(b)) < 1e-12, "%s = %.17g, expected %.17g", #a, (double)(a), (double)(b))

Test(train_metrics, weighted_mean_over_batches)
{
    metric_sum s = {0};
    cr_assert(isnan(metric_loss(&s)) && isnan(metric_accuracy(&s)), "nothing counted is NaN, not 0");
    metric_add(&s, 1.0f, 3, 4); /* 4 samples of mean loss 1 */
    metric_add(&s, 2.0f, 1, 2); /* 2 samples of mean loss 2: a short last batch */
    NEAR(metric_loss(&s), 8.0 / 6.0); /* (4*1 + 2*2) / 6, not the mean of the batch means (1.5) */
    NEAR(metric_accuracy(&s), 4.0 / 6.0);
}

Test(train_metrics, perplexity)
{
    NEAR(metric_perplexity(0.0), 1.0);
    cr_assert(fabs(metric_perplexity(log(50.0)) - 50.0) < 1e-9); /* uniform over 50 tokens */
}

/* Truth/prediction pairs, 3 classes:
 *   (0,0) (0,0) (0,1) (1,1) (1,2) (1,0) (2,2) (2,2) (2,0)
 * rows (truth): 0: [2 1 0]  1: [1 1 1]  2: [1 0 2]
 * class 0: tp 2, predicted 4 (column 0), actual 3 -> P 1/2, R 2/3, F1 2*(1/3)/(7/6) = 4/7
 * class 1: tp 1, predicted 2, actual 3            -> P 1/2, R 1/3, F1 2*(1/6)/(5/6) = 2/5
 * class 2: tp 2, predicted 3, actual 3            -> P 2/3, R 2/3, F1 2/3
 * accuracy 5/9; macro P (1/2 + 1/2 + 2/3)/3 = 5/9, R (2/3 + 1/3 + 2/3)/3 = 5/9,
 * F1 (4/7 + 2/5 + 2/3)/3. */
Test(train_metrics, confusion_precision_recall_f1)
{
    confusion c;
    cr_assert_eq(confusion_init(&c, 3), 0);
    const uint32_t pairs[][2] = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 2}, {1, 0}, {2, 2}, {2, 2}, {2, 0}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) confusion_add(&c, pairs[i][0], pairs[i][1]);
    cr_assert_eq(c.counts[0 * 3 + 1], 1); /* row = truth, column = prediction */
    cr_assert_eq(c.counts[1 * 3 + 0], 1);
    cr_assert_eq(c.counts[2 * 3 + 0], 1);
    class_scores s0 = confusion_class(&c, 0), s1 = confusion_class(&c, 1), s2 = confusion_class(&c, 2);
    NEAR(s0.precision, 0.5);
    NEAR(s0.recall, 2.0 / 3.0);
    NEAR(s0.f1, 4.0 / 7.0);
    NEAR(s1.precision, 0.5);
    NEAR(s1.recall, 1.0 / 3.0);
    NEAR(s1.f1, 0.4);
    NEAR(s2.precision, 2.0 / 3.0);
    NEAR(s2.recall, 2.0 / 3.0);
    NEAR(s2.f1, 2.0 / 3.0);
    cr_assert_eq(s0.support, 3);
    NEAR(confusion_accuracy(&c), 5.0 / 9.0);
    class_scores m = confusion_macro(&c);
    NEAR(m.precision, 5.0 / 9.0);
    NEAR(m.recall, 5.0 / 9.0);
    NEAR(m.f1, (4.0 / 7.0 + 0.4 + 2.0 / 3.0) / 3.0);
    cr_assert_eq(m.support, 9);
    confusion_free(&c);
}

/* A class that never occurs and is never predicted scores 0 and stays out of the macro
 * average; out-of-range labels are ignored. */
Test(train_metrics, absent_class)
{
    confusion c;
    cr_assert_eq(confusion_init(&c, 3), 0);
    confusion_add(&c, 0, 0);
    confusion_add(&c, 1, 0);
    confusion_add(&c, 7, 0); /* ignored */
    class_scores s2 = confusion_class(&c, 2);
    cr_assert(s2.precision == 0.0 && s2.recall == 0.0 && s2.f1 == 0.0 && s2.support == 0);
    /* class 0: P 1/2, R 1; class 1: P 0 (never predicted), R 0 */
    class_scores m = confusion_macro(&c);
    NEAR(m.precision, 0.25);
    NEAR(m.recall, 0.5);
    NEAR(m.f1, (2.0 / 3.0 + 0.0) / 2.0);
    confusion_free(&c);
}

/* The prediction is the first largest logit. */
Test(train_metrics, confusion_from_logits)
{
    confusion c;
    cr_assert_eq(confusion_init(&c, 3), 0);
    const float logits[] = {
        0.1f, 0.7f, 0.2f,    /* -> 1 */
        -1.0f, -3.0f, -0.5f, /* -> 2 */
        2.0f, 2.0f, 1.0f,    /* tie -> 0 */
    };
    const uint32_t labels[] = {1, 0, 0};
    confusion_add_logits(&c, logits, labels, 3);
    cr_assert_eq(c.counts[1 * 3 + 1], 1);
    cr_assert_eq(c.counts[0 * 3 + 2], 1);
    cr_assert_eq(c.counts[0 * 3 + 0], 1);
    NEAR(confusion_accuracy(&c), 2.0 / 3.0);
    confusion_free(&c);
}

/* Early stopping, patience 3, as Keras: losses 1.0, 0.9 (best), 0.95, 0.9 (equal is no
 * improvement), 0.92 -> three epochs without improvement after epoch 2: stop after
 * epoch 5 with epoch 2 the best. */
Test(train_schedule, early_stopping)
{
    early_stopping e;
    early_stopping_init(&e, 3);
    const double losses[] = {1.0, 0.9, 0.95, 0.9, 0.92};
    const int improved[] = {1, 1, 0, 0, 0}, stops[] = {0, 0, 0, 0, 1};
    for (uint32_t i = 0; i < 5; i++) {
        int stop = -1;
        cr_assert_eq(early_stopping_update(&e, i + 1, losses[i], &stop), improved[i], "epoch %u", i + 1);
        cr_assert_eq(stop, stops[i], "epoch %u", i + 1);
    }
    cr_assert_eq(e.best_epoch, 2);
    NEAR(e.best, 0.9);
    int stop;
    early_stopping_init(&e, 1);
    cr_assert_eq(early_stopping_update(&e, 1, NAN, &stop), 0, "a NaN loss is never an improvement");
    cr_assert_eq(stop, 1);
}

/* Reduce-on-plateau, patience 2, factor 0.5, min_lr 0.2, starting at lr 1:
 *   1.0 best; 0.99991 is not below 1.0 - 1e-4 (wait 1); 0.99995 (wait 2 -> lr 0.5);
 *   0.5 best; 0.6, 0.6 (-> 0.25); 0.7, 0.7 (-> max(0.125, 0.2) = 0.2); 0.7, 0.7 (at the
 *   floor: stays 0.2). */
Test(train_schedule, reduce_on_plateau)
{
    plateau p;
    plateau_init(&p, 2, 0.5f, 0.2f);
    const double losses[] = {1.0, 0.99991, 0.99995, 0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7};
    const float lrs[] = {1.0f, 1.0f, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.2f, 0.2f, 0.2f};
    float lr = 1.0f;
    for (int i = 0; i < 10; i++) {
        lr = plateau_update(&p, losses[i], lr);
        cr_assert_eq(lr, lrs[i], "epoch %d: lr %g, expected %g", i + 1, lr, lrs[i]);
    }
}

/* Learning-rate schedules against closed forms written another way: the warm-up's line,
 * cos^2(pi p / 2) for the half cosine, the line down, min_lr past the end. */
Test(train_metrics, learning_rate_schedules)
{
    lr_schedule c = {LR_COSINE, 1e-3f, 1e-5f, 10, 110}, l = {LR_LINEAR, 1e-3f, 1e-5f, 10, 110};
    lr_schedule k = {LR_CONSTANT, 2e-3f, 1e-5f, 10, 110};
    for (uint64_t s = 0; s < 10; s++) {
        cr_expect_float_eq(lr_schedule_at(&c, s), 1e-4 * (double)(s + 1), 1e-9, "warm-up step %llu",
                           (unsigned long long)s);
        cr_expect_float_eq(lr_schedule_at(&l, s), 1e-4 * (double)(s + 1), 1e-9);
    }
    for (uint64_t s = 10; s <= 110; s += 5) {
        double p = (double)(s - 10) / 100, half = cos(3.14159265358979323846 * p / 2);
        cr_expect_float_eq(lr_schedule_at(&c, s), 1e-5 + (1e-3 - 1e-5) * half * half, 1e-9, "cosine step %llu",
                           (unsigned long long)s);
        cr_expect_float_eq(lr_schedule_at(&l, s), 1e-3 - (1e-3 - 1e-5) * p, 1e-9, "linear step %llu",
                           (unsigned long long)s);
    }
    cr_expect_float_eq(lr_schedule_at(&c, 60), (1e-3 + 1e-5) / 2, 1e-9, "the cosine's midpoint");
    cr_expect_eq(lr_schedule_at(&c, 500), 1e-5f);
    cr_expect_eq(lr_schedule_at(&k, 500), 2e-3f);
    /* No warm-up: the first update at the full rate. */
    lr_schedule n = {LR_COSINE, 1e-3f, 0.0f, 0, 4};
    cr_expect_eq(lr_schedule_at(&n, 0), 1e-3f);
    cr_expect_float_eq(lr_schedule_at(&n, 2), 5e-4, 1e-9);
}

