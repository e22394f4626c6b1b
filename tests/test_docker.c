/* tests/test_docker.c — docker/: what can be checked without a Docker engine. The Dockerfile's
 * build packages are the Makefile's DEB_BUILD_PACKAGES; its ARG BUILD takes exactly the
 * Makefile's image variants; the runtime stage copies the whole bin folder of the variant, which
 * holds exactly `make print-commands`, and installs the package of every library the commands
 * link; the entrypoint passes shellcheck and runs the command as LOCAL_USER_ID/LOCAL_GROUP_ID
 * (files it writes belong to them); `make docker` says clearly when there is no engine.
 * Run from the repository root (tests/run_tests.sh does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/sb.h"
#include "tests/support/testutil.h"

#define DOCKERFILE "docker/Dockerfile"
#define ENTRYPOINT "docker/entrypoint.sh"
#define MAX_INSTR 256
#define MAX_WORDS 256

/* ---- a small Dockerfile reader ---------------------------------------------------------- */

/* One instruction: continuation lines joined, comment lines dropped. stage counts FROMs (the
 * instructions before the first FROM are stage -1). */
typedef struct df_instr {
    char kw[16];
    char *args;
    int stage;
} df_instr;

typedef struct df_file {
    df_instr ins[MAX_INSTR];
    int n;
    int nstages;
    char stage_name[16][64];
} df_file;

static void df_load(df_file *df, const char *path) {
    memset(df, 0, sizeof *df);
    char *text;
    size_t len;
    sb_err e;
    if (sb_read_file(path, &text, &len, &e) != 0) fail_msg("%s", e.msg);
    char *logical = sb_xmalloc(len + 1);
    size_t ll = 0;
    int stage = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\0') continue;
        size_t n = strlen(s);
        int cont = n > 0 && s[n - 1] == '\\';
        if (cont) n--;
        memcpy(logical + ll, s, n);
        ll += n;
        logical[ll++] = ' ';
        if (cont) continue;
        logical[ll] = '\0';
        ll = 0;
        assert_true(df->n < MAX_INSTR);
        df_instr *in = &df->ins[df->n++];
        size_t kl = strcspn(logical, " \t");
        snprintf(in->kw, sizeof in->kw, "%.*s", (int)kl, logical);
        in->args = strdup(logical + kl + strspn(logical + kl, " \t"));
        if (!strcmp(in->kw, "FROM")) {
            stage = df->nstages++;
            assert_true(stage < 16);
            const char *as = strstr(in->args, " AS ");
            if (as) sscanf(as + 4, "%63s", df->stage_name[stage]);
        }
        in->stage = stage;
    }
    free(logical);
    free(text);
}

static void df_free(df_file *df) {
    for (int i = 0; i < df->n; i++) free(df->ins[i].args);
}

static int df_stage(const df_file *df, const char *name) {
    for (int s = 0; s < df->nstages; s++)
        if (!strcmp(df->stage_name[s], name)) return s;
    fail_msg("%s: no stage named \"%s\"", DOCKERFILE, name);
    return -1;
}

/* The n-th instruction kw of stage (stage -2 = any) whose arguments contain needle, or NULL. */
static const df_instr *df_find(const df_file *df, int stage, const char *kw, const char *needle,
                               int nth) {
    for (int i = 0; i < df->n; i++) {
        const df_instr *in = &df->ins[i];
        if ((stage == -2 || in->stage == stage) && !strcmp(in->kw, kw) &&
            (!needle || strstr(in->args, needle)) && nth-- == 0)
            return in;
    }
    return NULL;
}

/* ---- word lists ------------------------------------------------------------------------- */

typedef struct words {
    char *w[MAX_WORDS];
    int n;
} words;

static void words_add(words *ws, const char *w, size_t n) {
    assert_true(ws->n < MAX_WORDS);
    ws->w[ws->n++] = strndup(w, n);
}

/* Split s at any of the separator characters. */
static void words_split(words *ws, const char *s, const char *sep) {
    while (*s) {
        s += strspn(s, sep);
        size_t n = strcspn(s, sep);
        if (n) words_add(ws, s, n);
        s += n;
    }
}

static void words_free(words *ws) {
    for (int i = 0; i < ws->n; i++) free(ws->w[i]);
    ws->n = 0;
}

static int words_has(const words *ws, const char *w) {
    for (int i = 0; i < ws->n; i++)
        if (!strcmp(ws->w[i], w)) return 1;
    return 0;
}

/* Same words, no duplicates; prints what each side lacks. Returns the number of differences. */
static int words_diff(const char *what, const words *got, const char *got_name, const words *want,
                      const char *want_name) {
    int bad = 0;
    for (int i = 0; i < want->n; i++)
        if (!words_has(got, want->w[i])) {
            fprintf(stderr, "%s: \"%s\" is in %s but not in %s\n", what, want->w[i], want_name,
                    got_name);
            bad++;
        }
    for (int i = 0; i < got->n; i++) {
        if (!words_has(want, got->w[i])) {
            fprintf(stderr, "%s: \"%s\" is in %s but not in %s\n", what, got->w[i], got_name,
                    want_name);
            bad++;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(got->w[i], got->w[j])) {
                fprintf(stderr, "%s: \"%s\" twice in %s\n", what, got->w[i], got_name);
                bad++;
            }
    }
    return bad;
}

/* The packages named by `apt-get install` in a RUN: words after "install" up to &&, ; or |,
 * options skipped. */
static void apt_packages(words *ws, const char *run) {
    const char *p = strstr(run, "apt-get install");
    if (!p) fail_msg("%s: no \"apt-get install\" in RUN %s", DOCKERFILE, run);
    words all = {0};
    words_split(&all, p + strlen("apt-get install"), " \t");
    for (int i = 0; i < all.n; i++) {
        const char *w = all.w[i];
        if (!strcmp(w, "&&") || !strcmp(w, ";") || !strcmp(w, "|") || !strcmp(w, "||")) break;
        if (w[0] != '-') words_add(ws, w, strlen(w));
    }
    words_free(&all);
}

/* make, cut off from a parent make's flags and jobserver (make check runs this test). */
#define MAKE "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory "

/* Output of a make target (e.g. print-commands) as words. */
static void make_words(words *ws, const char *target) {
    char *out;
    int rc = tu_run(&out, MAKE "%s", target);
    if (rc != 0) fail_msg("make %s failed (%d): %s", target, rc, out);
    words_split(ws, out, " \t\n");
    free(out);
}

/* ---- Dockerfile against the Makefile ------------------------------------------------------ */

static void test_build_packages_are_the_makefiles(void **state) {
    (void)state;
    df_file df;
    df_load(&df, DOCKERFILE);
    const df_instr *run = df_find(&df, df_stage(&df, "build"), "RUN", "apt-get install", 0);
    if (!run) fail_msg("%s: the build stage installs no packages", DOCKERFILE);
    words got = {0}, want = {0};
    apt_packages(&got, run->args);
    make_words(&want, "print-deb-build-packages");
    assert_true(want.n > 0);
    int bad = words_diff("build packages", &got, DOCKERFILE, &want, "Makefile DEB_BUILD_PACKAGES");
    words_free(&got);
    words_free(&want);
    df_free(&df);
    assert_int_equal(bad, 0);
}

static void test_build_arg_takes_the_image_variants(void **state) {
    (void)state;
    df_file df;
    df_load(&df, DOCKERFILE);
    words want = {0};
    make_words(&want, "print-image-variants");
    assert_true(want.n > 0);

    /* One default, declared before the first FROM; each stage re-declares ARG BUILD. */
    const df_instr *global = df_find(&df, -1, "ARG", "BUILD=", 0);
    if (!global) fail_msg("%s: no global ARG BUILD=<default> before the first FROM", DOCKERFILE);
    const char *def = strstr(global->args, "BUILD=") + strlen("BUILD=");
    char dflt[64];
    sscanf(def, "%63s", dflt);
    if (!words_has(&want, dflt))
        fail_msg("%s: ARG BUILD default \"%s\" is no variant", DOCKERFILE, dflt);
    for (int s = 0; s < df.nstages; s++)
        if (!df_find(&df, s, "ARG", "BUILD", 0))
            fail_msg("%s: stage %s does not declare ARG BUILD", DOCKERFILE, df.stage_name[s]);

    /* The build stage rejects every other value: its case pattern lists exactly the variants. */
    const df_instr *run = df_find(&df, df_stage(&df, "build"), "RUN", "case \"$BUILD\" in", 0);
    if (!run) fail_msg("%s: the build stage does not check $BUILD with a case", DOCKERFILE);
    const char *pat = strstr(run->args, " in ") + 4;
    pat += strspn(pat, " ");
    size_t pl = strcspn(pat, ")");
    char *pattern = strndup(pat, pl);
    words got = {0};
    words_split(&got, pattern, "| ");
    int bad = words_diff("ARG BUILD variants", &got, DOCKERFILE, &want, "Makefile IMAGE_VARIANTS");
    /* and make builds that very value */
    if (!df_find(&df, df_stage(&df, "build"), "RUN", "make -j\"$(nproc)\" BUILD=\"$BUILD\"", 0) &&
        !df_find(&df, df_stage(&df, "build"), "RUN", "make BUILD=\"$BUILD\"", 0)) {
        fprintf(stderr, "%s: the build stage never runs make BUILD=\"$BUILD\"\n", DOCKERFILE);
        bad++;
    }
    free(pattern);
    words_free(&got);
    words_free(&want);
    df_free(&df);
    assert_int_equal(bad, 0);
}

static void test_runtime_copies_exactly_the_commands(void **state) {
    (void)state;
    df_file df;
    df_load(&df, DOCKERFILE);
    int rt = df.nstages - 1;
    const df_instr *wd = df_find(&df, df_stage(&df, "build"), "WORKDIR", NULL, 0);
    if (!wd) fail_msg("%s: the build stage has no WORKDIR", DOCKERFILE);
    char src[256], dest[256];
    snprintf(src, sizeof src, "--from=build %.*s/build/${BUILD}/bin/ ", (int)strcspn(wd->args, " "),
             wd->args);
    /* The whole bin folder (trailing slash: its contents) into one folder on PATH. */
    const df_instr *cp = df_find(&df, rt, "COPY", src, 0);
    if (!cp) fail_msg("%s: the last stage has no COPY %s<dir>", DOCKERFILE, src);
    sscanf(strstr(cp->args, src) + strlen(src), "%255s", dest);
    assert_string_equal(dest, "/usr/local/bin/");
    /* nothing else lands there */
    for (int i = 0; i < df.n; i++) {
        const df_instr *in = &df.ins[i];
        if (in->stage == rt && !strcmp(in->kw, "COPY") && in != cp &&
            strstr(in->args, " /usr/local/bin"))
            fail_msg("%s: %s also copies into /usr/local/bin", DOCKERFILE, in->args);
    }
    df_free(&df);

    /* That folder holds exactly the commands make builds. */
    words want = {0}, got = {0};
    make_words(&want, "print-commands");
    char *out;
    assert_int_equal(tu_run(&out, "if [ -d {bin} ]; then ls {bin}; fi"), 0);
    words_split(&got, out, "\n");
    free(out);
    int bad = words_diff("commands", &got, getenv("SB_BIN_DIR") ? getenv("SB_BIN_DIR") : "bin",
                         &want, "make print-commands");
    words_free(&want);
    words_free(&got);
    assert_int_equal(bad, 0);

    /* Host build outputs stay out of the context, or make would reuse host objects. */
    assert_int_equal(tu_run(&out, "grep -qx 'build/\\?' .dockerignore"), 0);
    free(out);
}

static void test_runtime_installs_what_the_commands_link(void **state) {
    (void)state;
    const char *bd = getenv("SB_BUILD_DIR");
    if (bd && strstr(bd, "asan")) {
        print_message("skipped: the sanitizer build is not shipped as an image\n");
        skip();
    }
    df_file df;
    df_load(&df, DOCKERFILE);
    words pk = {0}, lines = {0};
    for (int k = 0;; k++) {
        const df_instr *run = df_find(&df, df.nstages - 1, "RUN", "apt-get install", k);
        if (!run) break;
        apt_packages(&pk, run->args);
    }
    df_free(&df);
    assert_true(pk.n > 0);
    /* The base image's essential packages (Debian priority "required"). */
    words_add(&pk, "libc6", 5);
    words_add(&pk, "libgcc-s1", 9);

    /* Each directly needed library of each command, and the package that ships it. */
    char *out;
    int rc = tu_run(&out, "for b in {bin}/*; do [ -x \"$b\" ] || continue; "
                          "for l in $(objdump -p \"$b\" | awk '/NEEDED/ {print $2}'); do "
                          "p=$(ldd \"$b\" | awk -v l=\"$l\" '$1 == l {print $3}'); "
                          "k=$( (dpkg -S \"$p\" || dpkg -S \"$(readlink -f \"$p\")\") 2>/dev/null "
                          "| head -n1 | cut -d: -f1); "
                          "echo \"$(basename \"$b\") $l ${k:-unknown}\"; done; done");
    assert_int_equal(rc, 0);
    words_split(&lines, out, "\n");
    free(out);
    int bad = 0, checked = 0;
    for (int i = 0; i < lines.n; i++) {
        char cmd[128], lib[128], pkg[128];
        if (sscanf(lines.w[i], "%127s %127s %127s", cmd, lib, pkg) != 3) continue;
        checked++;
        if (!words_has(&pk, pkg)) {
            fprintf(stderr,
                    "%s needs %s from Debian package %s, which the runtime stage of %s "
                    "does not install\n",
                    cmd, lib, pkg, DOCKERFILE);
            bad++;
        }
    }
    words_free(&lines);
    words_free(&pk);
    if (checked == 0) {
        print_message("skipped: no commands built in %s\n", getenv("SB_BIN_DIR"));
        skip();
    }
    assert_int_equal(bad, 0);
}

/* ---- entrypoint --------------------------------------------------------------------------- */

static void test_entrypoint_passes_shellcheck(void **state) {
    (void)state;
    char *out;
    if (tu_run(&out, "command -v shellcheck") != 0) {
        free(out);
        print_message("skipped: shellcheck is not installed (make deps installs it)\n");
        skip();
    }
    free(out);
    int rc = tu_run(&out, "shellcheck " ENTRYPOINT);
    if (rc != 0) fail_msg("shellcheck " ENTRYPOINT " (exit %d):\n%s", rc, out);
    free(out);
    struct stat st;
    assert_int_equal(stat(ENTRYPOINT, &st), 0);
    if (!(st.st_mode & S_IXUSR)) fail_msg(ENTRYPOINT " is not executable");
}

/* Run the entrypoint directly (never as in the image: SLIMBENCH_IMAGE unset, so no account is
 * changed on this machine), without the caller's own Open MPI root switches (CI exports them). */
#define EP                                                                                     \
    "env -u SLIMBENCH_IMAGE -u SB_ALLOW_ROOT -u SB_ENTRYPOINT_DRY_RUN -u OMPI_ALLOW_RUN_AS_ROOT " \
    "-u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM "

static void test_entrypoint_dry_run(void **state) {
    (void)state;
    char *out, want[128];
    assert_int_equal(tu_run(&out,
                            EP "LOCAL_USER_ID=12345 LOCAL_GROUP_ID=23456 "
                               "SB_ENTRYPOINT_DRY_RUN=1 " ENTRYPOINT " launch --batch_size=32"),
                     0);
    if (geteuid() == 0)
        snprintf(want, sizeof want, "uid=12345 gid=23456 exec: launch --batch_size=32\n");
    else
        snprintf(want, sizeof want, "uid=%d gid=%d exec: launch --batch_size=32\n", (int)geteuid(),
                 (int)getegid());
    assert_string_equal(out, want);
    free(out);
}

static void test_entrypoint_maps_uid(void **state) {
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: switching uid needs root (the dry run is checked)\n");
        skip();
    }
    char *out;
    /* the ids, no supplementary groups, and the container settings for Open MPI */
    assert_int_equal(tu_run(&out, EP "LOCAL_USER_ID=12345 LOCAL_GROUP_ID=23456 " ENTRYPOINT
                                     " sh -c 'id -u; id -g; id -G; "
                                     "echo $OMPI_MCA_btl_vader_single_copy_mechanism; "
                                     "echo ${OMPI_ALLOW_RUN_AS_ROOT:-no}'"),
                     0);
    assert_string_equal(out, "12345\n23456\n23456\nnone\nno\n");
    free(out);
    /* the gid defaults to the uid */
    assert_int_equal(tu_run(&out, EP "LOCAL_USER_ID=12346 " ENTRYPOINT " sh -c 'id -u; id -g'"), 0);
    assert_string_equal(out, "12346\n12346\n");
    free(out);

    /* a file written to a mounted folder belongs to the caller */
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir);
    assert_int_equal(chmod(dir, 01777), 0);
    snprintf(path, sizeof path, "%s/result.csv", dir);
    assert_int_equal(tu_run(&out,
                            EP "LOCAL_USER_ID=12345 LOCAL_GROUP_ID=23456 " ENTRYPOINT
                               " sh -c 'echo x > %s'",
                            path),
                     0);
    free(out);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 12345);
    assert_int_equal(st.st_gid, 23456);
    tu_remove_tree(dir);

    /* root only when asked */
    assert_int_equal(tu_run(&out, EP "LOCAL_USER_ID=0 " ENTRYPOINT " id -u"), 2);
    assert_non_null(strstr(out, "SB_ALLOW_ROOT=1"));
    free(out);
    assert_int_equal(tu_run(&out, EP "SB_ALLOW_ROOT=1 " ENTRYPOINT
                                     " sh -c 'id -u; echo $OMPI_ALLOW_RUN_AS_ROOT'"),
                     0);
    assert_string_equal(out, "0\n1\n");
    free(out);
    /* bad ids are named */
    assert_int_equal(tu_run(&out, EP "LOCAL_USER_ID=alice " ENTRYPOINT " id -u"), 2);
    assert_non_null(strstr(out, "LOCAL_USER_ID=alice"));
    free(out);
}

/* ---- make docker -------------------------------------------------------------------------- */

static void test_make_docker_without_engine(void **state) {
    (void)state;
    char *out;
    if (tu_run(&out, "docker info") == 0) {
        free(out);
        print_message("skipped: a Docker engine is available here (make docker would build)\n");
        skip();
    }
    free(out);
    assert_int_not_equal(tu_run(&out, MAKE "docker BUILD=generic"), 0);
    assert_non_null(strstr(out, "no Docker engine"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_packages_are_the_makefiles),
        cmocka_unit_test(test_build_arg_takes_the_image_variants),
        cmocka_unit_test(test_runtime_copies_exactly_the_commands),
        cmocka_unit_test(test_runtime_installs_what_the_commands_link),
        cmocka_unit_test(test_entrypoint_passes_shellcheck),
        cmocka_unit_test(test_entrypoint_dry_run),
        cmocka_unit_test(test_entrypoint_maps_uid),
        cmocka_unit_test(test_make_docker_without_engine),
    };
    return cmocka_run_group_tests_name("docker", tests, NULL, NULL);
}
