/* dist/shard.c — which data a replica trains on. Real data: the input pipeline reads shard i
 * when i % replicas == rank (pipe_config's replica_rank/replica_count, set by the launcher).
 * Synthetic data: replica r at batch B reads examples [r*B, (r+1)*B) of the seed's synthetic
 * example sequence, so replicas see different images and, together, exactly the batch one
 * replica would see at batch replicas*B (what the correctness test compares). Knows train/'s
 * synthetic source, nothing of MPI.
 */
#include "dist/dist.h"

void dist_shard_synthetic(data_source *src, int rank, int B, int H, int W, int C,
                          int num_classes, uint64_t seed) {
    SB_ASSERT(rank >= 0 && B > 0);
    synthetic_source_create_at(src, B, H, W, C, num_classes, seed, (uint64_t)rank * (uint64_t)B);
}
