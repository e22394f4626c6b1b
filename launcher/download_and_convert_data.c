/* launcher/download_and_convert_data.c — slim's download_and_convert_data: fetch mnist,
 * fashion_mnist, cifar10 or flowers and write its LMDB shards and labels.txt into --dataset_dir. */
#include <stdio.h>

#include "core/sb.h"
#include "datasets/datasets.h"
#include "flags/flags.h"
#include "launcher/common/cmdline.h"

static const char *k_prog = "download_and_convert_data";

static int run(const download_flags *f, sb_err *err) {
    if (!f->dataset_name || !*f->dataset_name)
        return sb_err_set(err, SB_E_USAGE, "You must supply the dataset name with --dataset_name");
    if (!f->dataset_dir || !*f->dataset_dir)
        return sb_err_set(err, SB_E_USAGE,
                          "You must supply the dataset directory with --dataset_dir");
    const dsf_dataset *ds = dsf_find(f->dataset_name);
    if (!ds)
        return sb_err_set(err, SB_E_USAGE, "--dataset_name=%s: unknown data set (known: %s)",
                          f->dataset_name, dsf_names());
    dsf_convert_opts o = {
        .source_url = f->source_url && *f->source_url ? f->source_url : NULL,
        .verify_checksums = f->verify_checksums,
        .keep_downloads = f->keep_downloads,
        .dl = {.retries = f->download_retries,
               .retry_delay_ms = f->download_retry_delay_ms,
               .progress = f->progress},
    };
    int rc = dsf_download_and_convert(ds, f->dataset_dir, &o, err);
    if (!rc) printf("\nFinished converting the %s dataset!\n", ds->name);
    return rc;
}

int main(int argc, char **argv) {
    download_flags df;
    flags_values_init(&flags_download_table, &df);
    const flags_binding bindings[] = {{&flags_download_table, &df}};
    const flags_spec spec = {k_prog,
                             "Downloads and converts a data set (mnist, fashion_mnist, cifar10, flowers) "
                             "to LMDB shards and labels.txt.",
                             bindings, SB_ARRAY_LEN(bindings)};
    sb_err err;
    sb_err_clear(&err);
    int status = cmd_parse_flags(&spec, argc, argv, false);
    if (status < 0) status = run(&df, &err) == 0 ? CMD_EXIT_OK : cmd_report(k_prog, &err);
    flags_values_fini(&flags_download_table, &df);
    return status;
}
