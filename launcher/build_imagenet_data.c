/* launcher/build_imagenet_data.c — slim's build_imagenet_data: ImageNet's JPEG folders to LMDB
 * shards (validation, then train) with slim's order, shards, labels and Example keys. */
#include <stdio.h>

#include "core/sb.h"
#include "datasets/imagenet/imagenet.h"
#include "flags/flags.h"
#include "launcher/common/cmdline.h"

static const char *k_prog = "build_imagenet_data";

static int run(const build_imagenet_flags *f, sb_err *err) {
    if (!f->output_directory || !*f->output_directory)
        return sb_err_set(err, SB_E_USAGE, "--output_directory must not be empty");
    if (f->train_shards % f->num_threads)
        return sb_err_set(err, SB_E_USAGE,
                          "Please make the FLAGS.num_threads commensurate with "
                          "FLAGS.train_shards (--train_shards=%d, --num_threads=%d)",
                          f->train_shards, f->num_threads);
    if (f->validation_shards % f->num_threads)
        return sb_err_set(err, SB_E_USAGE,
                          "Please make the FLAGS.num_threads commensurate with "
                          "FLAGS.validation_shards (--validation_shards=%d, --num_threads=%d)",
                          f->validation_shards, f->num_threads);
    imagenet_build_stats st = {0};
    imagenet_build_opts o = {
        .train_directory = f->train_directory,
        .validation_directory = f->validation_directory,
        .validation_labels_file = f->validation_labels_file,
        .output_directory = f->output_directory,
        .labels_file = f->labels_file,
        .metadata_file = f->imagenet_metadata_file,
        .bounding_box_file = f->bounding_box_file,
        .train_shards = f->train_shards,
        .validation_shards = f->validation_shards,
        .num_threads = f->num_threads,
        .progress = f->progress,
        .stats = &st,
    };
    int rc = imagenet_build(&o, err);
    printf("%s: %llu images written in %.2f s (%.0f images/s), %llu skipped, %llu shards kept\n",
           k_prog, (unsigned long long)st.images, st.seconds,
           st.seconds > 0 ? (double)st.images / st.seconds : 0.0, (unsigned long long)st.skipped,
           (unsigned long long)st.kept_shards);
    return rc;
}

int main(int argc, char **argv) {
    build_imagenet_flags bf;
    flags_values_init(&flags_build_imagenet_table, &bf);
    const flags_binding bindings[] = {{&flags_build_imagenet_table, &bf}};
    const flags_spec spec = {k_prog,
                             "Converts ImageNet JPEG folders to LMDB shards of tf.train.Example "
                             "records, as slim's build_imagenet_data.py writes TFRecords.",
                             bindings, SB_ARRAY_LEN(bindings)};
    sb_err err;
    sb_err_clear(&err);
    int status = cmd_parse_flags(&spec, argc, argv, false);
    if (status < 0) status = run(&bf, &err) == 0 ? CMD_EXIT_OK : cmd_report(k_prog, &err);
    flags_values_fini(&flags_build_imagenet_table, &bf);
    return status;
}
