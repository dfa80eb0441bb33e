#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests/test_slurm.py (CI) and for trying
# slurm/*.sbatch locally.
#
#   bash .ci/slurm-up.sh          # as root (or a user with passwordless sudo)
#
# 1. Slurm already answers with a usable node (sinfo: idle/mixed/allocated) -> exit 0 at once.
# 2. Installs Debian's slurm-wlm and munge with apt-get if a daemon or client is missing.
# 3. Writes /etc/slurm/slurm.conf for THIS machine: node name = `hostname -s`, CPUs = cores this
#    process may use, RealMemory = what slurmd detects (MiB); one partition "debug". A
#    slurm.conf that this script did not write is never overwritten.
# 4. Starts munged, slurmctld and slurmd (no systemd needed) and waits until the node is idle.
#
# Idempotent; every wait has a deadline (the whole run stays under ~3 minutes, see
# SLURM_UP_BUDGET); never reads stdin. Exit 0: Slurm is up. Exit 1: it is not (reason on
# stderr; logs in /var/log/slurm/ and /var/log/munge/).
set -euo pipefail
exec </dev/null

BUDGET="${SLURM_UP_BUDGET:-160}"        # seconds for the whole run, install included
CONF_DIR="${SLURM_CONF_DIR:-/etc/slurm}"
CONF="$CONF_DIR/slurm.conf"
MARK="# written by rcfast .ci/slurm-up.sh"
LOG_DIR=/var/log/slurm
export PATH="$PATH:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive
START=$SECONDS

log() { echo "slurm-up: $*" >&2; }
die() { log "error: $*"; exit 1; }
left() { local l=$((BUDGET - (SECONDS - START))); ((l > 1)) && echo "$l" || echo 1; }
# a timeout of at most $1 seconds that also ends within the budget
upto() { local l n=$1; ((n >= 1)) || n=1; l=$(left); ((l < n)) && echo "$l" || echo "$n"; }

# usable node states (sinfo %T; a trailing *~#!%$@^- flags a problem, e.g. "idle*" = no answer)
node_states() { timeout 10 sinfo -h -N -o '%T' 2>/dev/null || true; }
slurm_up() {
    command -v sinfo >/dev/null 2>&1 || return 1
    node_states | grep -Eqx 'idle|mixed|allocated|completing'
}

# the slurm.conf for THIS machine, detected now: sets host, cpus, mem and conf_text
make_conf() {
    host="$(hostname -s)"
    cpus="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
    mem="$(timeout 20 slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)"
    if [[ -z $mem ]]; then
        mem=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
    fi
    mem=$(( mem * 95 / 100 ))   # leave a little for the OS and the daemons
    ((mem > 0)) || { log "error: could not detect this machine's memory"; return 1; }

    conf_text="$MARK
# Single-node test cluster for $host: $cpus CPUs, $mem MiB (detected at run time).
ClusterName=rcfast-ci
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# no cgroups: works in containers; no accounting database
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# the node is what this file says, even where slurmd detects a slightly different machine
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
# sbatch --wait polls every 2 s only while MinJobAge < 5 (else every 8-32 s); completed jobs
# stay visible to scontrol for MinJobAge seconds
MinJobAge=4
Waittime=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
}

ours() { [[ -e $CONF ]] && grep -qxF "$MARK" "$CONF"; }
# up, and either not configured by this script or configured as it would be now: nothing to do
if slurm_up && { ! ours || { make_conf 2>/dev/null && [[ "$(cat "$CONF")" == "$conf_text" ]]; }; }
then
    log "Slurm is up: $(timeout 10 sinfo -h -N -o '%N %T %c CPUs %m MiB' | head -n 3 | paste -sd';')"
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n -E bash "$0" "$@"
    fi
    die "Slurm is not up and this is not root (run: sudo bash $0)"
fi

# ---- 1. packages -----------------------------------------------------------------------------
missing=()
for cmd in munged slurmctld slurmd sbatch sinfo scontrol srun; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get here"
    log "installing slurm-wlm and munge (missing: ${missing[*]})"
    apt_opts=(-q -y -o DPkg::Lock::Timeout=60 -o Acquire::Retries=2
              -o Acquire::http::Timeout=20 -o Dpkg::Options::=--force-confdef
              -o Dpkg::Options::=--force-confold)
    # packages must not start daemons on their own (there is no systemd here, and there is no
    # slurm.conf yet): a temporary policy-rc.d, unless the machine already has one
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
        trap 'if [[ $own_policy == 1 ]]; then rm -f "$policy"; fi' EXIT
    fi
    # the update may take at most half of what is left, the install what remains but ~40 s
    # for starting the daemons
    timeout "$(upto $(( ($(left) - 40) / 2 )))" apt-get "${apt_opts[@]}" update >/dev/null \
        || log "apt-get update failed or timed out; trying the package lists already here"
    timeout "$(upto $(( $(left) - 40 )))" apt-get "${apt_opts[@]}" install --no-install-recommends \
        slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
    if ((own_policy)); then rm -f "$policy"; own_policy=0; fi
    hash -r
    for cmd in munged slurmctld slurmd sbatch; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after the install"
    done
fi

# ---- 2. munge --------------------------------------------------------------------------------
munge_ok() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    id munge >/dev/null 2>&1 || die "no munge user (is the munge package installed?)"
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile=/etc/munge/munge.key --force
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    pkill_pidfile() {  # stop a stale daemon by its pid file (never by name)
        local pid
        [[ -s $1 ]] && pid=$(<"$1") && [[ $pid =~ ^[0-9]+$ ]] && kill "$pid" 2>/dev/null || true
        rm -f "$1"
    }
    pkill_pidfile /run/munge/munged.pid
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    log "starting munged"
    if command -v runuser >/dev/null 2>&1; then
        timeout "$(upto 15)" runuser -u munge -- munged || die "munged did not start (see /var/log/munge)"
    else
        timeout "$(upto 15)" su -s /bin/sh munge -c munged || die "munged did not start"
    fi
    until munge_ok; do
        (( SECONDS - START < BUDGET )) || die "munge does not answer (see /var/log/munge/)"
        sleep 0.5
    done
fi

# ---- 3. slurm.conf for this machine ----------------------------------------------------------
make_conf || die "could not detect this machine's configuration"
changed=0
if [[ -e $CONF ]] && ! grep -qxF "$MARK" "$CONF"; then
    log "$CONF exists and was not written by this script: leaving it as it is"
elif [[ ! -e $CONF ]] || [[ "$(cat "$CONF")" != "$conf_text" ]]; then
    mkdir -p "$CONF_DIR"
    printf '%s\n' "$conf_text" >"$CONF.tmp.$$" && mv -f "$CONF.tmp.$$" "$CONF"
    changed=1
    log "wrote $CONF (node $host, $cpus CPUs, $mem MiB)"
fi
mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR"

# ---- 4. daemons ------------------------------------------------------------------------------
alive() {  # pid file -> pid of a running process, or nothing
    local pid
    [[ -s $1 ]] && pid=$(<"$1") && [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && echo "$pid"
}
stop() {
    local pid
    pid=$(alive "$1") || return 0
    log "stopping pid $pid ($1)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}
ctld_ok() { timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; }

if ((changed)); then  # a new configuration: restart what runs with the old one
    stop /run/slurmd.pid
    stop /run/slurmctld.pid
fi

if ! ctld_ok; then
    stop /run/slurmctld.pid
    log "starting slurmctld"
    timeout "$(upto 15)" slurmctld || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
    until ctld_ok; do
        (( SECONDS - START < BUDGET )) || die "slurmctld does not answer (see $LOG_DIR/slurmctld.log)"
        sleep 1
    done
fi

if ! alive /run/slurmd.pid >/dev/null; then
    log "starting slurmd"
    timeout "$(upto 15)" slurmd || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
fi

resumed=0
until slurm_up; do
    (( SECONDS - START < BUDGET )) || {
        log "node states: $(node_states | paste -sd' ')"
        die "node $host is not idle (see $LOG_DIR/slurmd.log, $LOG_DIR/slurmctld.log)"
    }
    state="$(node_states | head -n1)"
    if ((resumed == 0)) && [[ $state =~ down|drain|fail ]]; then
        log "node is $state: resuming it"
        timeout 10 scontrol update NodeName="$host" State=RESUME || true
        resumed=1
    fi
    sleep 1
done
log "Slurm is up after $((SECONDS - START)) s: $(timeout 10 sinfo -h -N -o '%N %T %c CPUs %m MiB' | head -n1)"
