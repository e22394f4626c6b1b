/* launcher/common/eval_cmd.h — eval_image_classifier's work after its flags are parsed: load a
 * checkpoint into the net, run the evaluation split, print and record top-1 / top-5. */
#ifndef SB_LAUNCHER_EVAL_CMD_H
#define SB_LAUNCHER_EVAL_CMD_H

#include "core/sb.h"
#include "flags/flags.h"

/* What an evaluation measured. */
typedef struct eval_result {
    long long global_step;   /* of the checkpoint */
    long long num_examples;
    int num_batches;
    double accuracy;         /* top-1: argmax(logits) == label */
    double recall_5;         /* tf.nn.in_top_k(logits, label, 5) */
    double images_per_sec;
    char checkpoint[4096];   /* the file evaluated */
} eval_result;

/* Evaluate as slim's eval_image_classifier.py: --checkpoint_path (a file, or the newest
 * checkpoint of a train_dir), with the moving averages ("<var>/ExponentialMovingAverage") when
 * --moving_average_decay is set, over --max_num_batches batches (default: the whole split) of
 * --batch_size. Prints eval/Accuracy[...] and eval/Recall_5[...] and appends a row to
 * --results_csv when given explicitly, else results/evals.csv. res may be NULL.
 * Returns 0; SB_E_USAGE for contradictory flags; checkpoint errors naming the file and variable. */
int eval_cmd_run(const eval_flags *ef, const sb_flags *sf, eval_result *res, sb_err *err);

#endif
