/* dist/dist.c — the MPI job of a data-parallel run: start and end, rank and size, the hosts,
 * MPI_Abort as the assert hook, and the two hooks train_run calls (state broadcast from rank 0,
 * gradient averaging). It knows MPI, the net's arenas and train_config; it does not know flags.
 */
#include "dist/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

struct dist {
    int rank, size, local_size, host_count;
    char hosts[4096];
    dist_grads *grads;      /* the run's exchange, created by replicas_sync */
    const float *arena;     /* the gradient arena it reduces */
    size_t bucket_bytes;
    dist_stats stats;
};

bool dist_under_mpirun(void) { return getenv("OMPI_COMM_WORLD_SIZE") != NULL; }

int dist_env_rank(void) {
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    return r ? atoi(r) : 0;
}

/* core's abort hook: a failed SB_ASSERT on any rank ends the whole job. */
static void abort_job(void) { MPI_Abort(MPI_COMM_WORLD, 134); }

static int mpi_fail(sb_err *err, int code, const char *call) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, msg, &len);
    return sb_err_set(err, SB_E_MPI, "%s failed: %s", call, msg);
}

/* Distinct host names in rank order of first appearance, and how many. */
static void gather_hosts(dist *d) {
    char me[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    MPI_Get_processor_name(me, &len);
    char *all = sb_xcalloc((size_t)d->size, MPI_MAX_PROCESSOR_NAME);
    MPI_Allgather(me, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                  MPI_COMM_WORLD);
    d->host_count = 0;
    d->hosts[0] = 0;
    for (int r = 0; r < d->size; r++) {
        const char *h = all + (size_t)r * MPI_MAX_PROCESSOR_NAME;
        int seen = 0;
        for (int q = 0; q < r && !seen; q++)
            seen = strcmp(h, all + (size_t)q * MPI_MAX_PROCESSOR_NAME) == 0;
        if (seen) continue;
        size_t used = strlen(d->hosts);
        snprintf(d->hosts + used, sizeof d->hosts - used, "%s%s", d->host_count ? "," : "", h);
        d->host_count++;
    }
    free(all);
}

int dist_create(dist **out, sb_err *err) {
    *out = NULL;
    int provided = 0;
    /* Open MPI's non-blocking allreduce (libnbc) picks binomial or recursive doubling by
     * default: 10-17x slower than its ring on 4-25 MiB buckets here (bench/scaling), and slower
     * than the blocking MPI_Allreduce. The ring unless the user chose (environment wins). */
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "MPI_Init_thread");
    sb_set_abort_hook(abort_job);
    dist *d = sb_xcalloc(1, sizeof *d);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &d->local_size);
    MPI_Comm_free(&local);
    gather_hosts(d);
    *out = d;
    return 0;
}

void dist_destroy(dist *d, int status) {
    if (!d) return;
    dist_grads_destroy(d->grads);
    free(d);
    sb_set_abort_hook(NULL);
    if (status != 0) MPI_Abort(MPI_COMM_WORLD, status);
    MPI_Finalize();
}

int dist_rank(const dist *d) { return d->rank; }
int dist_size(const dist *d) { return d->size; }
int dist_local_size(const dist *d) { return d->local_size; }
int dist_host_count(const dist *d) { return d->host_count; }
const char *dist_hosts(const dist *d) { return d->hosts; }

void dist_bcast(dist *d, void *buf, size_t bytes) {
    for (size_t off = 0; off < bytes;) {
        size_t n = SB_MIN(bytes - off, (size_t)1 << 30);
        MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
        off += n;
    }
}

double dist_max(dist *d, double x) {
    double y = x;
    MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return y;
}

/* ---------------------------------------------------------------------------------------------
 * train_config hooks.
 * ------------------------------------------------------------------------------------------- */

static void on_grads_ready(void *ctx, size_t ready) {
    dist *d = ctx;
    double t0 = sb_now();
    dist_grads_ready(d->grads, ready);
    d->stats.ready_ms += (sb_now() - t0) * 1e3;
}

static void replicas_sync(net *n, float *slots, size_t slot_floats, float *scalars, int nscalars,
                          float *ema, int64_t *global_step, void *ctx) {
    dist *d = ctx;
    dist_bcast(d, net_params(n), net_params_len(n) * sizeof(float));
    if (slots) dist_bcast(d, slots, slot_floats * sizeof(float));
    dist_bcast(d, scalars, (size_t)nscalars * sizeof(float));
    if (ema) dist_bcast(d, ema, net_params_len(n) * sizeof(float));
    dist_bcast(d, global_step, sizeof *global_step);
    dist_grads_destroy(d->grads);
    dist_grads_create(&d->grads, d, net_grads(n), net_grads_len(n), d->bucket_bytes);
    d->arena = net_grads(n);
    d->stats.overlapped = net_set_grads_ready_hook(n, on_grads_ready, d) == 0;
    if (!d->stats.overlapped)
        sb_warn("%s: gradients not in layer order; allreduce starts after backward", net_name(n));
}

static void allreduce(float *grads, size_t n, void *ctx) {
    dist *d = ctx;
    SB_ASSERTF(d->grads && grads == d->arena, "allreduce before replicas_sync");
    double t0 = sb_now();
    dist_grads_finish(d->grads);
    d->stats.finish_ms += (sb_now() - t0) * 1e3;
    d->stats.steps++;
}

void dist_train_attach(dist *d, train_config *c, size_t bucket_bytes) {
    d->bucket_bytes = bucket_bytes ? bucket_bytes : DIST_BUCKET_BYTES;
    if (d->size <= 1) return;
    c->allreduce = allreduce;
    c->replicas_sync = replicas_sync;
    c->allreduce_ctx = d;
}

void dist_train_stats(const dist *d, dist_stats *st) { *st = d->stats; }
