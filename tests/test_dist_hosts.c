/* tests/test_dist_hosts.c — replicas on several hosts, made on this machine from network
 * namespaces: tests/dist/netns.sh makes 3 namespaces with 10.77.0.{1,2,3}/24 on veth links to a
 * bridge (the addresses exist only inside them), launch --worker_replicas=3 --hostfile re-executes
 * under mpirun in the first one, and mpirun starts its daemons in the others through
 * tests/dist/ns_rsh.sh (an rsh agent that enters the namespace, with its own host name). Ranks
 * talk over TCP only (btl tcp,self; oob and btl restricted to 10.77.0.0/24), train lenet a few
 * steps, and rank 0 checkpoints. Skipped unless root with `ip netns` and mpirun available. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/sb.h"
#include "tests/support/testutil.h"

static char g_prefix[32];

static int setup(void **state) {
    (void)state;
    snprintf(g_prefix, sizeof g_prefix, "sbd%d", (int)getpid() % 100000);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char *out = NULL;
    tu_run(&out, "tests/dist/netns.sh down %s 3", g_prefix);
    free(out);
    return 0;
}

static void test_three_namespace_hosts_over_tcp(void **state) {
    (void)state;
    if (geteuid() != 0) {
        printf("skipped: network namespaces need root\n");
        skip();
    }
    if (system("ip netns list >/dev/null 2>&1") != 0 ||
        system("command -v mpirun unshare >/dev/null 2>&1") != 0) {
        printf("skipped: `ip netns`, unshare or mpirun is not available\n");
        skip();
    }
    char *out = NULL;
    int rc = tu_run(&out, "tests/dist/netns.sh up %s 3", g_prefix);
    if (rc) fail_msg("making namespaces failed:\n%s", out);
    free(out);

    char dir[512], cwd[1024], env[PATH_MAX + 1024];
    tu_make_tmpdir(dir, sizeof dir);
    if (!getcwd(cwd, sizeof cwd)) fail_msg("getcwd");
    FILE *f = fopen(strcat(strcpy((char[600]){0}, dir), "/hosts"), "w");
    assert_non_null(f);
    fprintf(f, "10.77.0.1 slots=1\n10.77.0.2 slots=1\n10.77.0.3 slots=1\n");
    fclose(f);
    snprintf(env, sizeof env,
             "SB_NS_MAP=\"10.77.0.2=%s-h1 10.77.0.3=%s-h2\" "
             "OMPI_MCA_plm_rsh_agent=%s/tests/dist/ns_rsh.sh OMPI_MCA_plm_rsh_no_tree_spawn=1 "
             "OMPI_MCA_btl=tcp,self OMPI_MCA_oob_tcp_if_include=10.77.0.0/24 "
             "OMPI_MCA_btl_tcp_if_include=10.77.0.0/24",
             g_prefix, g_prefix, cwd);
    rc = tu_run(&out,
                "%s timeout 120 ip netns exec %s-h0 unshare --uts sh -c 'hostname %s-h0 && exec "
                "{bin}/launch --model_name=lenet --batch_size=4 --optimizer=sgd "
                "--worker_replicas=3 --hostfile=%s/hosts --threads_per_replica=1 "
                "--max_number_of_steps=4 --num_warmup_steps=1 --train_dir=%s/run "
                "--results_csv=%s/runs.csv'",
                env, g_prefix, g_prefix, dir, dir, dir);
    if (rc) fail_msg("3 namespace hosts: launch failed (%d):\n%s", rc, out);
    char want[256];
    snprintf(want, sizeof want, "3 replicas (MPI ranks) on 3 hosts: %s-h0,%s-h1,%s-h2", g_prefix,
             g_prefix, g_prefix);
    if (!strstr(out, want)) fail_msg("expected \"%s\" in:\n%s", want, out);
    if (!strstr(out, "total images/sec")) fail_msg("no summary in:\n%s", out);
    free(out);
    struct stat st;
    assert_int_equal(stat(strcat(strcpy((char[600]){0}, dir), "/run/model.ckpt-4"), &st), 0);
    /* the results row names the job's hosts (quoted: it holds commas) */
    char *csv = NULL;
    size_t len;
    assert_int_equal(sb_read_file(strcat(strcpy((char[600]){0}, dir), "/runs.csv"), &csv, &len,
                                  NULL),
                     0);
    snprintf(want, sizeof want, "\"%s-h0,%s-h1,%s-h2\",3,", g_prefix, g_prefix, g_prefix);
    if (!strstr(csv, want)) fail_msg("expected %s in the results row:\n%s", want, csv);
    free(csv);
    tu_remove_tree(dir);
}

int main(void) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_three_namespace_hosts_over_tcp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
