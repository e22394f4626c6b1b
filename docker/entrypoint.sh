#!/bin/sh
# docker/entrypoint.sh — runs a slimbench command (or mpirun, or an sshd for multi-node runs) as
# the host caller's uid/gid, so what it writes to mounted data and results folders belongs to the
# caller, and sets the Open MPI defaults that containers need.
#
#   LOCAL_USER_ID, LOCAL_GROUP_ID  uid/gid to run as (default 1000, and the uid for the gid).
#                        Pass -e LOCAL_USER_ID="$(id -u)" -e LOCAL_GROUP_ID="$(id -g)".
#   SB_ALLOW_ROOT=1      stay root (and let mpirun run as root). Without it, uid 0 is refused.
#   SB_SSH_PORT          port of the containers' sshd for mpirun across nodes (default 2222).
#   SB_SSH_DIR           folder holding the key pair (id_ed25519) and authorized_keys that the
#                        containers of one job share (default /ssh).
#   SB_ENTRYPOINT_DRY_RUN=1  print "uid=U gid=G exec: CMD..." instead of running the command.
#
# Started as non-root (docker run --user, Apptainer, Singularity), the uid cannot change: the
# command runs as it is. Started as root inside the image (SLIMBENCH_IMAGE is set there), the
# image's user "slimbench" is given the requested uid/gid so that name, $HOME and ssh work; run
# directly on a host as root, no account is touched and setpriv switches to the bare ids.
#
# The command "sshd" starts an OpenSSH server on SB_SSH_PORT as the mapped user (no root needed)
# that accepts the keys in SB_SSH_DIR/authorized_keys: mpirun in one container starts the ranks
# in the others through it (see docker/README.md).
set -eu

die() {
    echo "entrypoint: $*" >&2
    exit 2
}

is_uint() {
    case $1 in
    '' | *[!0-9]*) return 1 ;;
    *) return 0 ;;
    esac
}

# --- Open MPI in containers ----------------------------------------------------------------
# Docker's default seccomp profile and capabilities forbid the cross-memory-attach syscalls
# (process_vm_readv) of the shared-memory transport's single-copy path: copy through the
# shared segment instead.
: "${OMPI_MCA_btl_vader_single_copy_mechanism:=none}"
export OMPI_MCA_btl_vader_single_copy_mechanism
ssh_port=${SB_SSH_PORT:-2222}
ssh_dir=${SB_SSH_DIR:-/ssh}
is_uint "$ssh_port" || die "SB_SSH_PORT=$ssh_port is not a port number"
# mpirun reaches the other nodes' containers through their sshd on ssh_port, with the job's key.
# Host keys are made per container at start, so they cannot be known in advance.
: "${OMPI_MCA_plm_rsh_agent:=ssh}"
if [ -z "${OMPI_MCA_plm_rsh_args:-}" ]; then
    OMPI_MCA_plm_rsh_args="-p $ssh_port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    if [ -f "$ssh_dir/id_ed25519" ]; then
        OMPI_MCA_plm_rsh_args="$OMPI_MCA_plm_rsh_args -i $ssh_dir/id_ed25519"
    fi
fi
export OMPI_MCA_plm_rsh_agent OMPI_MCA_plm_rsh_args

# --- who to run as -----------------------------------------------------------------------
self=$(id -u)
if [ "$self" != 0 ]; then
    # Not root: the runtime already chose the ids (docker run --user, Apptainer, Singularity).
    uid=$self
    gid=$(id -g)
elif [ "${SB_ALLOW_ROOT:-0}" = 1 ]; then
    uid=0
    gid=0
else
    uid=${LOCAL_USER_ID:-1000}
    gid=${LOCAL_GROUP_ID:-$uid}
    is_uint "$uid" || die "LOCAL_USER_ID=$uid is not a numeric uid (pass -e LOCAL_USER_ID=\"\$(id -u)\")"
    is_uint "$gid" || die "LOCAL_GROUP_ID=$gid is not a numeric gid (pass -e LOCAL_GROUP_ID=\"\$(id -g)\")"
    if [ "$uid" = 0 ] || [ "$gid" = 0 ]; then
        die "refusing to run as root (LOCAL_USER_ID=$uid LOCAL_GROUP_ID=$gid); set SB_ALLOW_ROOT=1 to run as root"
    fi
fi
if [ "$uid" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# Give the image's account the requested ids, so the name, $HOME and ssh's user lookup work.
# Never done outside the image: there the ids are switched without touching any account.
if [ "$self" = 0 ] && [ "$uid" != 0 ] && [ -n "${SLIMBENCH_IMAGE:-}" ] &&
    [ "${SB_ENTRYPOINT_DRY_RUN:-0}" != 1 ] && getent passwd slimbench >/dev/null; then
    if [ "$(id -u slimbench)" != "$uid" ] || [ "$(id -g slimbench)" != "$gid" ]; then
        groupmod -o -g "$gid" slimbench
        usermod -o -u "$uid" -g "$gid" slimbench
        chown -R "$uid:$gid" /home/slimbench
    fi
fi

home=$(getent passwd "$uid" | cut -d: -f6) || home=
if [ -z "$home" ]; then
    home=${TMPDIR:-/tmp}
fi
user=$(getent passwd "$uid" | cut -d: -f1) || user=
export HOME="$home" USER="${user:-$uid}" LOGNAME="${user:-$uid}"

# --- what to run ---------------------------------------------------------------------------
if [ "$#" -eq 0 ]; then
    set -- launch --help
fi

if [ "$1" = sshd ]; then
    shift
    [ -f "$ssh_dir/authorized_keys" ] ||
        die "sshd: $ssh_dir/authorized_keys not found; mount the job's key folder (-v DIR:$ssh_dir:ro)"
    sshd_config=/dev/null
    if [ "${SB_ENTRYPOINT_DRY_RUN:-0}" != 1 ]; then
        # A private folder for the host key and config, owned by the user the server runs as.
        sshd_state=$(mktemp -d "${TMPDIR:-/tmp}/slimbench-sshd.XXXXXX")
        sshd_config=$sshd_state/sshd_config
        ssh-keygen -q -t ed25519 -N '' -f "$sshd_state/host_ed25519"
        cat >"$sshd_config" <<EOF
Port $ssh_port
HostKey $sshd_state/host_ed25519
AuthorizedKeysFile $ssh_dir/authorized_keys
PidFile $sshd_state/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitUserEnvironment no
EOF
        chown -R "$uid:$gid" "$sshd_state"
    fi
    set -- /usr/sbin/sshd -D -e -f "$sshd_config" "$@"
fi

if [ "${SB_ENTRYPOINT_DRY_RUN:-0}" = 1 ]; then
    echo "uid=$uid gid=$gid exec: $*"
    exit 0
fi

if [ "$self" != 0 ] || [ "$uid" = 0 ]; then
    exec "$@"
fi
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
