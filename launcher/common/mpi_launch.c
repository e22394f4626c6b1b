/* launcher/common/mpi_launch.c — see mpi_launch.h. Knows what slim's replica flags mean for an
 * MPI job; dist/ does the MPI work. */
#include "launcher/common/mpi_launch.h"

#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dist *g_dist; /* the job, between mpi_launch_begin and mpi_launch_end */

bool mpi_launch_wanted(const train_flags *tf) {
    return tf->worker_replicas > 1 && !dist_under_mpirun();
}

int mpi_launch_exec(int argc, char **argv, const train_flags *tf, const sb_flags *sf,
                    sb_err *err) {
    char self[PATH_MAX], np[16];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) snprintf(self, sizeof self, "%s", argv[0]);
    else self[len] = 0;
    snprintf(np, sizeof np, "%d", tf->worker_replicas);
    char **av = sb_xcalloc((size_t)argc + 12, sizeof *av);
    int k = 0;
    av[k++] = "mpirun";
    av[k++] = "-np";
    av[k++] = np;
    if (sf->hostfile[0]) {
        av[k++] = "--hostfile";
        av[k++] = (char *)sf->hostfile;
    } else if (sf->hosts[0]) {
        av[k++] = "--host";
        av[k++] = (char *)sf->hosts;
    } else if (tf->worker_replicas > omp_get_num_procs()) {
        av[k++] = "--oversubscribe";
    }
    /* Each rank runs its own OpenMP team: Open MPI's default core binding would squeeze it. */
    av[k++] = "--bind-to";
    av[k++] = "none";
    av[k++] = self;
    for (int i = 1; i < argc; i++) av[k++] = argv[i];
    av[k] = NULL;
    fflush(stdout);
    fflush(stderr);
    execvp(av[0], av);
    int e = errno;
    free(av);
    return sb_err_set(err, SB_E_USAGE,
                      "flag --worker_replicas=%d: cannot run mpirun: %s (install Open MPI's "
                      "openmpi-bin, or start launch under mpirun yourself)",
                      tf->worker_replicas, strerror(e));
}

int mpi_launch_begin(const train_flags *tf, mpi_replicas *r, sb_err *err) {
    *r = (mpi_replicas){0, 1, 1, 1, ""};
    if (!dist_under_mpirun()) {
        if (tf->worker_replicas > 1)
            return sb_err_set(err, SB_E_USAGE,
                              "flag --worker_replicas=%d: not under mpirun and not re-executed",
                              tf->worker_replicas);
        return 0;
    }
    int rc = dist_create(&g_dist, err);
    if (rc) return rc;
    r->rank = dist_rank(g_dist);
    r->size = dist_size(g_dist);
    r->local_size = dist_local_size(g_dist);
    r->host_count = dist_host_count(g_dist);
    r->hosts = dist_hosts(g_dist);
    if (r->rank != 0) sb_log_config(SB_LOG_WARN, r->rank);
    else if (r->size > 1) sb_log_config(SB_LOG_INFO, 0);
    if (tf->set.worker_replicas && tf->worker_replicas != r->size)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --worker_replicas=%d, but mpirun started %d ranks; give mpirun "
                          "-np %d or leave --worker_replicas out",
                          tf->worker_replicas, r->size, tf->worker_replicas);
    if (r->size > 1)
        sb_info("%d replicas (MPI ranks) on %d host%s: %s", r->size, r->host_count,
                r->host_count == 1 ? "" : "s", r->hosts);
    return 0;
}

int mpi_launch_train_config(const train_flags *tf, const mpi_replicas *r, train_config *c,
                            sb_err *err) {
    if (r->size <= 1) return 0;
    if (tf->sync_replicas && tf->set.replicas_to_aggregate &&
        tf->replicas_to_aggregate != r->size)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --replicas_to_aggregate=%d: replicas allreduce every step, so a "
                          "global step aggregates all %d replicas; give --replicas_to_aggregate=%d "
                          "or leave it out",
                          tf->replicas_to_aggregate, r->size, r->size);
    /* One global step consumes size x batch_size images: slim's sync_replicas schedule. */
    c->lr.sync_replicas = true;
    c->lr.replicas_to_aggregate = r->size;
    if (r->rank != 0) {
        c->train_dir = NULL;
        c->step_csv = NULL;
        c->checkpoint_path = NULL;
    }
    dist_train_attach(g_dist, c, 0);
    return 0;
}

void mpi_launch_stats(dist_stats *st) {
    if (g_dist) dist_train_stats(g_dist, st);
    else memset(st, 0, sizeof *st);
}

void mpi_launch_end(int status) {
    dist *d = g_dist;
    if (d && status == 0 && dist_rank(d) == 0 && dist_size(d) > 1) {
        dist_stats st;
        dist_train_stats(d, &st);
        if (st.steps > 0)
            sb_info("gradient exchange: %lld steps, %.1f ms/step in MPI during backward, %.1f "
                    "ms/step waiting after it (buckets %s)",
                    (long long)st.steps, st.ready_ms / (double)st.steps,
                    st.finish_ms / (double)st.steps,
                    st.overlapped ? "started during backward" : "started after backward");
    }
    g_dist = NULL;
    dist_destroy(d, status);
}
