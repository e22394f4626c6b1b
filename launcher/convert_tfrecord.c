/* launcher/convert_tfrecord.c — the `convert_tfrecord` command: slim TFRecord shards to LMDB
 * shards of the same names (--to=lmdb), or back (--to=tfrecord), record for record. */
#include <stdio.h>
#include <string.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "flags/flags.h"
#include "launcher/common/cmdline.h"

static const char *k_prog = "convert_tfrecord";

static int run(const convert_flags *f, sb_err *err) {
    if (!f->input || !*f->input) return sb_err_set(err, SB_E_USAGE, "--input is required");
    if (!f->output_directory || !*f->output_directory)
        return sb_err_set(err, SB_E_USAGE, "--output_directory is required");
    char **paths;
    size_t n;
    int rc = dsf_glob(f->input, &paths, &n, err);
    if (rc) return rc;
    rec_convert_opts o = {
        .to = strcmp(f->to, "tfrecord") ? REC_FORMAT_LMDB : REC_FORMAT_TFRECORD,
        .check_examples = f->check_examples,
        .progress = f->progress,
        .threads = f->num_threads,
        .lmdb = {.map_size = (size_t)f->lmdb_map_size_mb << 20,
                 .commit_bytes = (size_t)f->lmdb_commit_mb << 20},
    };
    rec_convert_stats st;
    double t0 = sb_now();
    rc = rec_convert_files((const char *const *)paths, n, f->output_directory, &o, &st, err);
    double dt = sb_now() - t0;
    dsf_free_paths(paths, n);
    printf("%s: %llu records (%.1f MB) in %llu files to %s in %.2f s: %.0f records/s, %.1f MB/s; "
           "%llu files skipped; %llu corrupt records skipped",
           k_prog, (unsigned long long)st.records, (double)st.bytes / 1e6,
           (unsigned long long)st.files, o.to == REC_FORMAT_LMDB ? "LMDB" : "TFRecord", dt,
           dt > 0 ? (double)st.records / dt : 0.0, dt > 0 ? (double)st.bytes / 1e6 / dt : 0.0,
           (unsigned long long)st.skipped_files, (unsigned long long)st.corrupt);
    if (st.lost_tails)
        printf(" (%llu files unreadable after a broken record)", (unsigned long long)st.lost_tails);
    printf("\n");
    return rc;
}

int main(int argc, char **argv) {
    convert_flags cf;
    flags_values_init(&flags_convert_table, &cf);
    const flags_binding bindings[] = {{&flags_convert_table, &cf}};
    const flags_spec spec = {k_prog,
                             "Converts slim TFRecord shards to LMDB shards of the same names "
                             "(--to=lmdb) or LMDB shards back to TFRecord (--to=tfrecord).",
                             bindings, SB_ARRAY_LEN(bindings)};
    sb_err err;
    sb_err_clear(&err);
    int status = cmd_parse_flags(&spec, argc, argv, false);
    if (status < 0) status = run(&cf, &err) == 0 ? CMD_EXIT_OK : cmd_report(k_prog, &err);
    flags_values_fini(&flags_convert_table, &cf);
    return status;
}
