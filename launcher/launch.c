/* launcher/launch.c — the `launch` command: TF-slim's train_image_classifier flags plus
 * slimbench's, checked, printed, and handed to training. */
#include <stdio.h>

#include "core/sb.h"
#include "flags/flags.h"
#include "launcher/common/cmdline.h"
#include "launcher/common/mpi_launch.h"
#include "launcher/common/train_cmd.h"

int main(int argc, char **argv) {
    train_flags tf;
    sb_flags sf;
    flags_values_init(&flags_train_table, &tf);
    flags_values_init(&flags_sb_table, &sf);
    const flags_binding bindings[] = {{&flags_train_table, &tf}, {&flags_sb_table, &sf}};
    const flags_spec spec = {
        "launch",
        "Trains a TF-slim image classifier on CPUs (synthetic ImageNet-shaped data when "
        "--dataset_dir is empty) and appends a results row to --results_csv.",
        bindings, SB_ARRAY_LEN(bindings)};
    sb_err err;
    sb_err_clear(&err);

    int status = cmd_parse_flags(&spec, argc, argv, false);
    if (status < 0 && sf.version) {
        sb_build_describe(stdout);
        status = CMD_EXIT_OK;
    }
    if (status < 0 && train_cmd_check(&tf, &sf, &err) != 0) status = cmd_report("launch", &err);
    if (status < 0 && mpi_launch_wanted(&tf)) /* returns only when mpirun cannot start */
        status = cmd_report("launch", (mpi_launch_exec(argc, argv, &tf, &sf, &err), &err));
    if (status < 0) {
        /* --print_model's output stands alone on stdout (so =dot pipes into Graphviz) */
        if (dist_env_rank() == 0 && !sf.print_model[0]) flags_print_config(stdout, &spec);
        fflush(stdout);
        status = train_cmd_run(&tf, &sf, &err) == 0 ? CMD_EXIT_OK : cmd_report("launch", &err);
    }
    mpi_launch_end(status); /* MPI_Finalize, or MPI_Abort on failure (no-op without MPI) */
    flags_values_fini(&flags_sb_table, &sf);
    flags_values_fini(&flags_train_table, &tf);
    return status;
}
