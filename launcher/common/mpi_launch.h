/* launcher/common/mpi_launch.h — launch's side of MPI replicas: the re-exec under mpirun for
 * --worker_replicas > 1, and the mapping of slim's replica flags onto the MPI job (ranks,
 * threads, learning-rate schedule, which rank writes). The process's one job handle lives here
 * (launcher/ may hold process-wide state). */
#ifndef SB_LAUNCHER_MPI_LAUNCH_H
#define SB_LAUNCHER_MPI_LAUNCH_H

#include <stdbool.h>

#include "core/sb.h"
#include "dist/dist.h"
#include "flags/flags.h"
#include "train/train_loop.h"

/* True when launch must re-execute itself under mpirun: --worker_replicas > 1 and this process
 * was not started by mpirun. */
bool mpi_launch_wanted(const train_flags *tf);

/* Replace this process with `mpirun -np N [--oversubscribe] [--hostfile F | --host H]
 * --bind-to none <this binary> <argv[1..]>` (N = --worker_replicas; --oversubscribe when no host
 * list is given and N exceeds this host's cores). Returns only on failure: SB_E_USAGE when
 * mpirun cannot be executed (err names it and the errno text). */
int mpi_launch_exec(int argc, char **argv, const train_flags *tf, const sb_flags *sf,
                    sb_err *err);

/* The replicas of this run. */
typedef struct mpi_replicas {
    int rank, size;     /* this replica, the replica count (0, 1 outside mpirun) */
    int local_size;     /* replicas on this host */
    int host_count;
    const char *hosts;  /* comma-separated host names; valid until mpi_launch_end */
} mpi_replicas;

/* Under mpirun: start the MPI job (dist_create) and check --worker_replicas against its size
 * (SB_E_USAGE when it was set to another count). Ranks other than 0 log warnings and errors
 * only. Outside mpirun: one replica, no MPI. */
int mpi_launch_begin(const train_flags *tf, mpi_replicas *r, sb_err *err);

/* Map the job onto the training config: the dist/ hooks (state broadcast, gradient averaging
 * overlapped with backward); slim's --sync_replicas semantics for the learning-rate schedule
 * (one global step = size x --batch_size images, decay_steps divided by the replica count;
 * SB_E_USAGE when --sync_replicas names another --replicas_to_aggregate than the replica
 * count); only rank 0 keeps --train_dir (checkpoints, summaries, resume), --step_csv and
 * --checkpoint_path, the others get rank 0's state by broadcast. */
int mpi_launch_train_config(const train_flags *tf, const mpi_replicas *r, train_config *c,
                            sb_err *err);

/* The job's exchange statistics (zeros outside MPI). */
void mpi_launch_stats(dist_stats *st);

/* End the job: MPI_Finalize when status is 0, MPI_Abort(status) otherwise (so a failure on one
 * rank ends all). No-op outside MPI. */
void mpi_launch_end(int status);

#endif
