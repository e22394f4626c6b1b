/* launcher/common/cmdline.c — see cmdline.h. The one place that turns a flags_parse outcome into
 * text on the terminal and an exit status, so every command answers alike. */
#include "launcher/common/cmdline.h"

#include <stdio.h>

int cmd_report(const char *program, const sb_err *err) {
    fprintf(stderr, "%s: %s\n", program, err->msg);
    return err->code == SB_E_USAGE || err->code == SB_E_UNSUPPORTED ? CMD_EXIT_USAGE
                                                                     : CMD_EXIT_RUNTIME;
}

void cmd_warn_inert(const flags_table *t, const void *values) {
    for (size_t i = 0; i < t->count; i++) {
        const flags_def *d = &t->defs[i];
        const bool *set = (const bool *)((const char *)values + d->set_offset);
        if ((d->traits & FLAGS_TRAIT_INERT) && *set)
            sb_warn("--%s has no effect in slimbench (accepted for TF-slim compatibility)",
                    d->name);
    }
}

int cmd_parse_flags(const flags_spec *spec, int argc, char *const argv[], bool allow_positional) {
    flags_result res;
    sb_err err;
    sb_err_clear(&err);
    int status = -1;
    if (flags_parse(spec, argc, argv, &res, &err) != 0) {
        fprintf(stderr, "%s: %s\nPass --help or --helpfull to see help on flags.\n", spec->program,
                err.msg);
        status = CMD_EXIT_USAGE;
    } else if (res.help != FLAGS_HELP_NONE) {
        flags_print_help(stdout, spec, res.help);
        status = CMD_EXIT_OK;
    } else if (!allow_positional && res.npositional > 0) {
        fprintf(stderr,
                "%s: unexpected argument '%s': %s takes only flags (a boolean takes its value as "
                "--name=false, not as the next argument)\n",
                spec->program, res.positional[0], spec->program);
        status = CMD_EXIT_USAGE;
    }
    flags_result_fini(&res);
    return status;
}
