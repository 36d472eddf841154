#!/usr/bin/env bash
# A throwaway single-node Slurm cluster, for `make test-slurm` and for trying
# `critlab sweep --executor slurm` on one machine (README, "Running a sweep on
# a Slurm cluster"). Everything lives in one directory: slurm.conf, the munge
# key and socket, spool, state, logs and pid files. The daemons run as plain
# processes (no systemd); `stop` ends only the daemons whose pids `start`
# wrote into that directory.
#
#   tools/slurm-local.sh install       apt-get install slurm-wlm and munge if missing (root)
#   tools/slurm-local.sh start [DIR]   start munged, slurmctld, slurmd in DIR (default: a new
#                                      temporary directory); prints `export SLURM_CONF=...`
#   tools/slurm-local.sh stop DIR      stop the daemons started in DIR and remove DIR
#
# Clients (sbatch, squeue, scancel, sinfo) need SLURM_CONF=DIR/slurm.conf; the
# config names the munge socket, so they do not need the system munged.
# Choices that work in a container without systemd or cgroup control:
# proctrack/linuxproc, task/none, no accounting, SlurmUser=root, slurmd -N
# localhost. Ports: SLURM_LOCAL_PORT (default: the first free pair from 16817).
set -euo pipefail

die() { echo "slurm-local: $*" >&2; exit 1; }

install() {
	local missing=()
	for bin in sbatch slurmctld slurmd munged mungekey; do
		command -v "$bin" >/dev/null || PATH=$PATH:/usr/sbin command -v "$bin" >/dev/null || missing+=("$bin")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: run as root, or apt-get install slurm-wlm munge"
	echo "slurm-local: installing slurm-wlm and munge (missing ${missing[*]})" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS CMD...: retry CMD until it succeeds.
wait_for() {
	local n=$(($1 * 5)); shift
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

start() {
	export PATH=$PATH:/usr/sbin
	[ "$(id -u)" -eq 0 ] || die "start: run as root (slurmd starts jobs as their users)"
	local dir=${1:-$(mktemp -d /tmp/slurm-local.XXXXXX)}
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ -e "$dir/slurm.conf" ] && die "$dir holds a cluster already (stop it first)"
	mkdir -p "$dir"/{munge,spool,state,log}
	# munged refuses group- or world-writable directories on its paths.
	chmod 755 "$dir"
	chmod 700 "$dir/munge"
	chown munge:munge "$dir/munge"

	# munge: its own key and socket, started as the munge user.
	mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1 ||
		dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
	chown munge:munge "$dir/munge/munge.key"
	chmod 400 "$dir/munge/munge.key"
	local sock=$dir/munge/munge.socket
	runuser -u munge -- munged --force \
		--key-file="$dir/munge/munge.key" --socket="$sock" \
		--pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
		--seed-file="$dir/munge/munged.seed"
	wait_for 10 munge -n -S "$sock" || die "munged did not start (see $dir/munge/munged.log)"
	cp "$dir/munge/munged.pid" "$dir/munged.pid"

	local port=${SLURM_LOCAL_PORT:-16817}
	if [ -z "${SLURM_LOCAL_PORT:-}" ]; then
		while ! port_free "$port" || ! port_free $((port + 1)); do port=$((port + 2)); done
	fi
	local host cpus mem
	host=$(hostname -s)
	cpus=$(nproc)
	mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
	cat >"$dir/slurm.conf" <<-EOF
	ClusterName=critlab-local
	SlurmctldHost=$host(127.0.0.1)
	SlurmctldPort=$port
	SlurmdPort=$((port + 1))
	SlurmUser=root
	SlurmdUser=root
	AuthType=auth/munge
	CredType=cred/munge
	AuthInfo=socket=$sock
	StateSaveLocation=$dir/state
	SlurmdSpoolDir=$dir/spool
	SlurmctldPidFile=$dir/slurmctld.pid
	SlurmdPidFile=$dir/slurmd.pid
	SlurmctldLogFile=$dir/log/slurmctld.log
	SlurmdLogFile=$dir/log/slurmd.log
	ProctrackType=proctrack/linuxproc
	TaskPlugin=task/none
	JobAcctGatherType=jobacct_gather/none
	AccountingStorageType=accounting_storage/none
	JobCompType=jobcomp/none
	MpiDefault=none
	SchedulerType=sched/backfill
	SelectType=select/cons_tres
	SelectTypeParameters=CR_CPU
	ReturnToService=2
	SchedulerParameters=sched_interval=2
	MessageTimeout=30
	KillWait=10
	NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
	PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
	EOF
	export SLURM_CONF=$dir/slurm.conf
	slurmctld -f "$SLURM_CONF"
	slurmd -f "$SLURM_CONF" -N localhost
	wait_for 30 sinfo -h || { stop_daemons "$dir"; die "slurmctld did not answer (see $dir/log)"; }
	if ! wait_for 60 bash -c '[ "$(sinfo -h -N -o %t)" = idle ]'; then
		sinfo -N >&2 || true
		stop_daemons "$dir"
		die "node localhost did not become idle (see $dir/log/slurmd.log)"
	fi
	echo "export SLURM_CONF=$SLURM_CONF"
}

# stop_daemons DIR: TERM each daemon whose pid file DIR holds, if that pid is
# still the daemon it names, then wait for it to exit.
stop_daemons() {
	local dir=$1 name pid
	for name in slurmd slurmctld munged; do
		[ -f "$dir/$name.pid" ] || continue
		pid=$(cat "$dir/$name.pid")
		if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
			kill "$pid"
			for ((i = 0; i < 100; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
		rm -f "$dir/$name.pid"
	done
}

stop() {
	local dir=${1:-}
	[ -n "$dir" ] && [ -f "$dir/slurm.conf" ] || die "stop: give the directory that start printed"
	stop_daemons "$dir"
	rm -rf "$dir"
}

case "${1:-}" in
install) install ;;
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
*) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
