/* core/build_info.c — the build's identity (variant, compiler, flags, git revision), compiled in
 * by the Makefile through -D definitions on this file only, so a new commit rebuilds one file. */
#include "sb.h"

#include <string.h>

#ifndef SB_BUILD_VARIANT
#define SB_BUILD_VARIANT "unknown"
#endif
#ifndef SB_BUILD_CC
#define SB_BUILD_CC "unknown"
#endif
#ifndef SB_BUILD_CFLAGS
#define SB_BUILD_CFLAGS "unknown"
#endif
#ifndef SB_BUILD_GIT_SHA
#define SB_BUILD_GIT_SHA "unknown"
#endif

const char *sb_build_variant(void) { return SB_BUILD_VARIANT; }
const char *sb_build_cc(void) { return SB_BUILD_CC; }
const char *sb_build_cflags(void) { return SB_BUILD_CFLAGS; }
const char *sb_build_git_sha(void) { return SB_BUILD_GIT_SHA; }

const char *sb_build_isa(void) {
#if defined(__AVX512F__)
    return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2";
#else
    return "scalar";
#endif
}

void sb_build_describe(FILE *out) {
    fprintf(out, "slimbench %s\n  build:  %s (isa %s)\n  cc:     %s\n  cflags: %s\n",
            sb_build_git_sha(), sb_build_variant(), sb_build_isa(), sb_build_cc(), sb_build_cflags());
}

void sb_cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return;
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *v = strchr(line, ':');
            if (v) {
                v++;
                while (*v == ' ' || *v == '\t') v++;
                snprintf(buf, n, "%s", v);
                size_t l = strlen(buf);
                while (l && (buf[l - 1] == '\n' || buf[l - 1] == ' ')) buf[--l] = '\0';
            }
            break;
        }
    }
    fclose(fp);
}
