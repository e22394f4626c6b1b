/* launcher/common/cmdline.h — what every command's main() does with its flags: parse, answer
 * --help/--helpfull, report usage errors the same way. Compiled into the library; only
 * launcher/ uses it. */
#ifndef SB_LAUNCHER_CMDLINE_H
#define SB_LAUNCHER_CMDLINE_H

#include <stdbool.h>

#include "core/sb.h"
#include "flags/flags.h"

/* Exit statuses of every command (STYLE.md §3). */
enum cmd_exit { CMD_EXIT_OK = 0, CMD_EXIT_RUNTIME = 1, CMD_EXIT_USAGE = 2 };

/* Parse argv into spec's structs (initialised by the caller).
 *
 * @param[in] spec  the command's tables
 * @param[in] allow_positional  false: an argument that is not a flag is a usage error
 * @return -1 when the command should go on; otherwise the status main() should return:
 *         CMD_EXIT_OK after printing the requested help to stdout, CMD_EXIT_USAGE after
 *         printing "<program>: <message>" and a pointer to --help to stderr.
 */
int cmd_parse_flags(const flags_spec *spec, int argc, char *const argv[], bool allow_positional);

/* Print "<program>: <err->msg>" to stderr and return the exit status for err->code:
 * CMD_EXIT_USAGE for SB_E_USAGE and SB_E_UNSUPPORTED (a flag asks for something this build
 * does not do), CMD_EXIT_RUNTIME otherwise. */
int cmd_report(const char *program, const sb_err *err);

/* Warn once per INERT flag of table t set explicitly in values: it is accepted for TF-slim
 * compatibility only. */
void cmd_warn_inert(const flags_table *t, const void *values);

#endif
