/* launcher/eval_image_classifier.c — the `eval_image_classifier` command: TF-slim's
 * eval_image_classifier flags plus slimbench's, handed to eval_cmd_run. */
#include <stdio.h>

#include "core/sb.h"
#include "flags/flags.h"
#include "launcher/common/cmdline.h"
#include "launcher/common/eval_cmd.h"

int main(int argc, char **argv) {
    eval_flags ef;
    sb_flags sf;
    flags_values_init(&flags_eval_table, &ef);
    flags_values_init(&flags_sb_table, &sf);
    const flags_binding bindings[] = {{&flags_eval_table, &ef}, {&flags_sb_table, &sf}};
    const flags_spec spec = {
        "eval_image_classifier",
        "Evaluates a slimbench checkpoint of a TF-slim image classifier (top-1 accuracy and "
        "recall@5) and appends a row to results/evals.csv (or --results_csv).",
        bindings, SB_ARRAY_LEN(bindings)};
    sb_err err;
    sb_err_clear(&err);
    int status = cmd_parse_flags(&spec, argc, argv, false);
    if (status < 0 && sf.version) {
        sb_build_describe(stdout);
        status = CMD_EXIT_OK;
    }
    if (status < 0)
        status = eval_cmd_run(&ef, &sf, NULL, &err) == 0 ? CMD_EXIT_OK
                                                         : cmd_report("eval_image_classifier", &err);
    flags_values_fini(&flags_sb_table, &sf);
    flags_values_fini(&flags_eval_table, &ef);
    return status;
}
