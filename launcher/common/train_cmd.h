/* launcher/common/train_cmd.h — launch's side of the flags: checks across flags that the table's
 * per-flag bounds cannot express, and the single hand-over from parsed flags to training. */
#ifndef SB_LAUNCHER_TRAIN_CMD_H
#define SB_LAUNCHER_TRAIN_CMD_H

#include "core/sb.h"
#include "flags/flags.h"
#include "train/train.h"

/* Check combinations of launch's flags.
 *
 * @param[in]  tf, sf  parsed train and slimbench flags
 * @param[out] err     names the flag(s) and what to do instead
 * @return 0; SB_E_USAGE for contradictory flags (--sync_replicas with --replicas_to_aggregate
 *         < 1, --hosts with --hostfile, --max_number_of_steps (or, unset,
 *         --default_max_number_of_steps) not above --num_warmup_steps);
 *         SB_E_UNSUPPORTED for slim features slimbench does not have (--num_ps_tasks > 0,
 *         --num_clones > 1, --quantize_delay >= 0); SB_E_USAGE when train/ rejects the optimizer
 *         or learning-rate flags (opt_config_check, lr_config_check; the schedule is checked
 *         against ImageNet's 1281167 training images when the data is ImageNet or synthetic).
 * Flags marked INERT that were set explicitly get a warning on stderr (they have no effect).
 */
int train_cmd_check(const train_flags *tf, const sb_flags *sf, sb_err *err);

/* slim's _configure_optimizer: the optimizer flags into train/'s opt_config (one line per flag).
 * Returns 0 or SB_E_USAGE naming --optimizer when its value has no optimizer. */
int train_cmd_opt_config(const train_flags *tf, opt_config *oc, sb_err *err);

/* slim's _configure_learning_rate inputs into train/'s lr_config; num_samples_per_epoch is the
 * training split's size (the dataset's, not a flag). Returns 0 or SB_E_USAGE naming
 * --learning_rate_decay_type. */
int train_cmd_lr_config(const train_flags *tf, int64_t num_samples_per_epoch, lr_config *lc,
                        sb_err *err);

/* Hand the checked flags over to training: the one call site where launch's work starts.
 * Maps the flags to train/'s train_config, picks the data (synthetic ImageNet-shaped batches
 * unless --dataset_dir names LMDB shards, then datasets/' input pipeline), sets the OpenMP
 * thread count (--threads_per_replica, 0: every core), trains (train_run), appends the results
 * row to --results_csv and prints tf_cnn_benchmarks' "total images/sec: ..." summary.
 * --dry_run returns after a line saying nothing was trained.
 * Under mpirun each rank is a replica (launcher/common/mpi_launch.h, docs/dist.md): its own data
 * shard, rank 0's state broadcast, gradients averaged every step; rank 0 alone writes.
 * @return 0 on success; SB_E_USAGE when --worker_replicas contradicts mpirun's rank count
 *         (launch exits 2); a code and err on a runtime failure (launch exits 1): SB_E_DIVERGED
 *         naming the step, SB_E_MPI, checkpoint and data errors naming the file. */
int train_cmd_run(const train_flags *tf, const sb_flags *sf, sb_err *err);

#endif
