/* dist/dist.h — data-parallel replicas over Open MPI: one MPI rank per replica.
 *
 *   dist_        the job: MPI start/stop, rank and size, the SB_ASSERT abort hook (MPI_Abort,
 *                so one rank's bug ends the whole job), broadcast of rank 0's training state
 *   dist_grads_  the gradient exchange: the contiguous gradient arena averaged across ranks in
 *                reverse buckets (the last layers' gradients are final first), each bucket's
 *                MPI_Iallreduce started as soon as backward has finished it, all waited before
 *                the optimizer (PyTorch DDP, Horovod)
 *   dist_shard_  which part of the data a replica reads
 *
 * Only this module calls MPI. Kernels, models and train/ see it through the two hooks of
 * train_config (train_loop.h) and the grads-ready hook of models.h.
 */
#ifndef SB_DIST_H
#define SB_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sb.h"
#include "train/train_loop.h"

/* ---------------------------------------------------------------------------------------------
 * The job.
 * ------------------------------------------------------------------------------------------- */

/* True when this process was started by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is set). */
bool dist_under_mpirun(void);
/* This process's rank from mpirun's environment (OMPI_COMM_WORLD_RANK), 0 outside mpirun.
 * Usable before dist_create (e.g. to print the configuration on rank 0 only). */
int dist_env_rank(void);

typedef struct dist dist; /* opaque */

/* Start MPI (MPI_Init_thread, MPI_THREAD_FUNNELED: only the main thread calls MPI; OpenMP
 * workers never do), install MPI_Abort as core's abort hook, learn the rank, the size and the
 * hosts (ranks per host: MPI_Comm_split_type SHARED). Call at most once per process.
 * @return 0, or SB_E_MPI with err naming the failed call. On success *out owns the job. */
int dist_create(dist **out, sb_err *err);

/* End the job. status 0: MPI_Finalize. Otherwise MPI_Abort(status), which ends every rank (a
 * rank that failed alone must not leave the others blocked in a collective). NULL: no-op. */
void dist_destroy(dist *d, int status);

int dist_rank(const dist *d);
int dist_size(const dist *d);
/* Ranks on this rank's host, and the number of distinct hosts of the job. */
int dist_local_size(const dist *d);
int dist_host_count(const dist *d);
/* Host names of the job, comma-separated in rank order of first appearance ("a,b"); static to d,
 * valid until dist_destroy. */
const char *dist_hosts(const dist *d);

/* Broadcast bytes from rank 0 to every rank (in chunks below INT_MAX). */
void dist_bcast(dist *d, void *buf, size_t bytes);
/* Largest value of x over the ranks. */
double dist_max(dist *d, double x);

/* ---------------------------------------------------------------------------------------------
 * Gradient exchange (dist/allreduce.c).
 * ------------------------------------------------------------------------------------------- */

typedef struct dist_grads dist_grads; /* opaque */

/* Default bucket size: 25 MiB, PyTorch DDP's bucket_cap_mb. */
#define DIST_BUCKET_BYTES ((size_t)25 << 20)

/* Plan the buckets of grads (n floats, borrowed until dist_grads_destroy): bucket 0 is the last
 * bucket_bytes of the arena, bucket 1 the bytes before it, and so on (the arena holds the
 * variables in layer order, so backward finishes it from the end). */
void dist_grads_create(dist_grads **out, dist *d, float *grads, size_t n, size_t bucket_bytes);
void dist_grads_destroy(dist_grads *g);

/* Backward has finished grads[ready, n): start the allreduce of every bucket inside that range
 * not started yet, and let MPI progress the ones in flight (MPI_Testall). */
void dist_grads_ready(dist_grads *g, size_t ready);
/* Start the buckets not started, wait for all, divide by the rank count: grads then holds the
 * average over the replicas, identical on every rank. */
void dist_grads_finish(dist_grads *g);

/* The same exchange in one call (every bucket started at once, then finished). */
void dist_grads_allreduce(dist_grads *g);

/* ---------------------------------------------------------------------------------------------
 * Training (dist/dist.c): the hooks of train_config.
 * ------------------------------------------------------------------------------------------- */

/* Set c->allreduce and c->replicas_sync (and their context) so that train_run, after the
 * variables are initialized or restored, broadcasts rank 0's state (variables with batch-norm
 * moving statistics, optimizer slots and scalars, moving averages, global_step), installs the
 * grads-ready hook on the net (buckets start during backward), and averages the gradients every
 * step. Nothing changes for a job of one rank. bucket_bytes 0: DIST_BUCKET_BYTES. */
void dist_train_attach(dist *d, train_config *c, size_t bucket_bytes);

/* Statistics of the exchange since dist_train_attach: steps, total milliseconds spent in
 * MPI calls during backward (dist_grads_ready) and waiting after it (dist_grads_finish). */
typedef struct dist_stats {
    int64_t steps;
    double ready_ms, finish_ms;
    int overlapped; /* 1 when buckets started during backward (the net accepted the hook) */
} dist_stats;
void dist_train_stats(const dist *d, dist_stats *st);

/* ---------------------------------------------------------------------------------------------
 * Data (dist/shard.c).
 * ------------------------------------------------------------------------------------------- */

/* Synthetic batches for replica `rank` with per-replica batch B: rank r's batch is examples
 * [r*B, (r+1)*B) of the synthetic source of batch size*B with the same seed, so size replicas at
 * batch B train on exactly the batch one replica trains on at size*B. */
void dist_shard_synthetic(data_source *src, int rank, int B, int H, int W, int C,
                          int num_classes, uint64_t seed);

#endif /* SB_DIST_H */
