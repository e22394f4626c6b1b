/* launcher/common/train_cmd.c — see train_cmd.h. Knows what launch's flags mean together; the
 * parser (flags/) only knows each flag on its own. */
#include "launcher/common/train_cmd.h"

#include <stdio.h>
#include <string.h>

/* Warn once per INERT flag given explicitly: it is accepted for slim compatibility only. */
static void warn_inert(const flags_table *t, const void *values) {
    for (size_t i = 0; i < t->count; i++) {
        const flags_def *d = &t->defs[i];
        const bool *set = (const bool *)((const char *)values + d->set_offset);
        if ((d->traits & FLAGS_TRAIT_INERT) && *set)
            sb_warn("--%s has no effect in slimbench (accepted for TF-slim compatibility)",
                    d->name);
    }
}

int train_cmd_check(const train_flags *tf, const sb_flags *sf, sb_err *err) {
    if (tf->num_ps_tasks > 0)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "flag --num_ps_tasks=%d: slimbench has no parameter servers; replicas "
                          "allreduce gradients over MPI. Leave --num_ps_tasks at 0",
                          tf->num_ps_tasks);
    if (tf->num_clones != 1)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "flag --num_clones=%d: model clones are not supported; use "
                          "--worker_replicas=%d (or mpirun -np %d) for data parallelism",
                          tf->num_clones, tf->num_clones, tf->num_clones);
    if (tf->quantize_delay >= 0)
        return sb_err_set(err, SB_E_UNSUPPORTED,
                          "flag --quantize_delay=%d: quantized training is not built in "
                          "slimbench; leave --quantize_delay at -1",
                          tf->quantize_delay);
    if (tf->sync_replicas && tf->replicas_to_aggregate < 1)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --replicas_to_aggregate=%d: --sync_replicas needs "
                          "--replicas_to_aggregate >= 1",
                          tf->replicas_to_aggregate);
    if (sf->hosts[0] && sf->hostfile[0])
        return sb_err_set(err, SB_E_USAGE,
                          "flags --hosts=%s and --hostfile=%s: give one or the other", sf->hosts,
                          sf->hostfile);
    if (tf->set.max_number_of_steps && tf->max_number_of_steps <= sf->num_warmup_steps)
        return sb_err_set(err, SB_E_USAGE,
                          "flag --max_number_of_steps=%d leaves no timed steps after "
                          "--num_warmup_steps=%d; raise the first or lower the second",
                          tf->max_number_of_steps, sf->num_warmup_steps);
    warn_inert(&flags_train_table, tf);
    warn_inert(&flags_sb_table, sf);
    if ((sf->hosts[0] || sf->hostfile[0]) && tf->worker_replicas == 1)
        sb_warn("--hosts/--hostfile only matter with --worker_replicas > 1; ignored");
    return 0;
}

int train_cmd_run(const train_flags *tf, const sb_flags *sf, sb_err *err) {
    (void)tf;
    (void)sf;
    (void)err;
    printf("launch: training is not built yet in this revision; the flags above were parsed and "
           "checked, nothing was trained and no results row was written.\n");
    return 0;
}
