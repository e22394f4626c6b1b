#!/bin/sh
# tests/dist/ns_rsh.sh — Open MPI rsh agent (plm_rsh_agent) that "logs in" to a host made from a
# network namespace: mpirun calls it like ssh, `ns_rsh.sh [ssh options] HOST COMMAND...`, and it
# runs COMMAND through `sh -c` inside the namespace that SB_NS_MAP names for HOST
# ("10.77.0.2=sbd-h1 10.77.0.3=sbd-h2"), in its own UTS namespace whose hostname is the
# namespace's name, so each rank's host name differs as on real hosts. Used by
# tests/test_dist_hosts.c; needs root (ip netns exec, unshare).
set -eu
while [ $# -gt 0 ]; do
  case "$1" in
    -[lpoi]) shift 2 ;;      # ssh options with a value
    -*) shift ;;              # ssh flags (-x, -T, ...)
    *) break ;;
  esac
done
host=${1:?ns_rsh.sh: no host given}
shift
ns=
for pair in ${SB_NS_MAP:-}; do
  [ "${pair%%=*}" = "$host" ] && ns=${pair#*=}
done
if [ -z "$ns" ]; then
  echo "ns_rsh.sh: host $host is not in SB_NS_MAP (${SB_NS_MAP:-empty})" >&2
  exit 255
fi
# shellcheck disable=SC2016  # $1 and $* belong to the inner shell
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$1"; shift; exec sh -c "$*"' ns_rsh "$ns" "$@"
