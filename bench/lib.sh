# bench/lib.sh — helpers the benchmark scripts source (compare_builds.sh, peers.sh, report):
# CSV columns looked up by header name (so a results file of another revision, with more or
# fewer config columns, still reads), medians, and an append that writes the header when the file
# is new and moves a file with another header aside instead of mixing the two.
# shellcheck shell=bash

# The awk function that splits one CSV line into f[1..n] (RFC 4180 quoting), shared by every
# awk program below. mawk has no FPAT, so it is done by hand.
BENCH_AWK_CSV='
function csv_split(line, f,    n, i, c, q, cur) {
    n = 0; cur = ""; q = 0
    for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (q) {
            if (c == "\"") {
                if (substr(line, i + 1, 1) == "\"") { cur = cur "\""; i++ } else q = 0
            } else cur = cur c
        } else if (c == "\"") q = 1
        else if (c == ",") { f[++n] = cur; cur = "" }
        else cur = cur c
    }
    f[++n] = cur
    return n
}
function csv_quote(s) {
    if (s ~ /[",\n]/) { gsub(/"/, "\"\"", s); return "\"" s "\"" }
    return s
}
'

# bench_csv_last FILE COL... — the named columns of FILE's last row, tab-separated ("" for a
# column the file does not have).
bench_csv_last() {
    local file=$1
    shift
    awk -v cols="$*" "$BENCH_AWK_CSV"'
        NR == 1 { n = csv_split($0, h); for (i = 1; i <= n; i++) idx[h[i]] = i; next }
        { last = $0 }
        END {
            csv_split(last, f)
            k = split(cols, want, " ")
            for (i = 1; i <= k; i++) printf "%s%s", (want[i] in idx ? f[idx[want[i]]] : ""), (i < k ? "\t" : "\n")
        }' "$file"
}

# bench_csv_select FILE COL... — every row's named columns, tab-separated, header skipped.
bench_csv_select() {
    local file=$1
    shift
    awk -v cols="$*" "$BENCH_AWK_CSV"'
        NR == 1 { n = csv_split($0, h); for (i = 1; i <= n; i++) idx[h[i]] = i; k = split(cols, want, " "); next }
        {
            csv_split($0, f)
            for (i = 1; i <= k; i++) printf "%s%s", (want[i] in idx ? f[idx[want[i]]] : ""), (i < k ? "\t" : "\n")
        }' "$file"
}

# bench_median_spread — reads numbers (one a line) and prints "median min max n".
bench_median_spread() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "0 0 0 0"; exit }
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        print m, v[1], v[NR], NR }'
}

# bench_csv_append FILE HEADER ROW — append ROW (one CSV line); write HEADER first when FILE is
# new. A FILE with a different header is renamed FILE.old-<time> (with a message) so rows of two
# schemas never share a file. The data is flushed to disk with sync(1).
bench_csv_append() {
    local file=$1 header=$2 row=$3
    if [ -s "$file" ] && [ "$(head -n 1 "$file")" != "$header" ]; then
        local old
        old="$file.old-$(date -u +%Y%m%dT%H%M%SZ)"
        mv "$file" "$old"
        echo "note: $file had another header; moved it to $old" >&2
    fi
    if [ ! -s "$file" ]; then
        printf '%s\n%s\n' "$header" "$row" >>"$file"
    else
        printf '%s\n' "$row" >>"$file"
    fi
    sync "$file" 2>/dev/null || true
}

# bench_cpu_count — online CPUs.
bench_cpu_count() { getconf _NPROCESSORS_ONLN 2>/dev/null || nproc; }

# bench_cpu_model — /proc/cpuinfo's model name.
bench_cpu_model() {
    awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null
}

# bench_cpu_has FLAG — /proc/cpuinfo lists the CPU flag.
bench_cpu_has() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }

# bench_variant_runs PROG VARIANT — whether this CPU can execute a build variant (an avx512 build
# on an AVX2-only machine dies of SIGILL); when not, says why on stderr (as PROG) and returns 1.
bench_variant_runs() {
    local why=""
    case $2 in
    avx512) bench_cpu_has avx512f || why="this CPU has no AVX-512 (no avx512f in /proc/cpuinfo)" ;;
    avx2) { bench_cpu_has avx2 && bench_cpu_has fma; } || why="this CPU has no AVX2/FMA" ;;
    esac
    [ -z "$why" ] && return 0
    echo "$1: skipping $2: $why" >&2
    return 1
}
