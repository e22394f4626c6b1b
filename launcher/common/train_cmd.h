/* launcher/common/train_cmd.h — launch's side of the flags: checks across flags that the table's
 * per-flag bounds cannot express, and the single hand-over from parsed flags to training. */
#ifndef SB_LAUNCHER_TRAIN_CMD_H
#define SB_LAUNCHER_TRAIN_CMD_H

#include "core/sb.h"
#include "flags/flags.h"

/* Check combinations of launch's flags.
 *
 * @param[in]  tf, sf  parsed train and slimbench flags
 * @param[out] err     names the flag(s) and what to do instead
 * @return 0; SB_E_USAGE for contradictory flags (--sync_replicas with --replicas_to_aggregate
 *         < 1, --hosts with --hostfile, --max_number_of_steps not above --num_warmup_steps);
 *         SB_E_UNSUPPORTED for slim features slimbench does not have (--num_ps_tasks > 0,
 *         --num_clones > 1, --quantize_delay >= 0).
 * Flags marked INERT that were set explicitly get a warning on stderr (they have no effect).
 */
int train_cmd_check(const train_flags *tf, const sb_flags *sf, sb_err *err);

/* Hand the checked flags over to training: the one call site where launch's work starts.
 * @return 0 on success; a code and err on a runtime failure (launch exits 1). */
int train_cmd_run(const train_flags *tf, const sb_flags *sf, sb_err *err);

#endif
