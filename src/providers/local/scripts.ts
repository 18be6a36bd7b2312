// The shell programs that start an instance. One detached process runs them in turn:
//
//   launch (host)   joins the instance cgroup in every hierarchy, then
//                   nsenter --net=/run/netns/berth-<id> unshare --mount --propagation slave --pid --fork --mount-proc
//   init (PID 1)    makes its mount namespace read-only except the data dir, hides the Berth data dir
//                   (other instances' tokens, the store), gives the instance a private /dev/shm, then
//                   execs tini, which reaps orphans (conmon after `runc start`, `exec -d` processes)
//   supervisor      tini's child: runs the agent and restarts it whenever it exits
//
// Everything is passed as positional parameters (never interpolated into the script text).
// `nsenter --net` and not `ip netns exec`: the latter remounts /sys, which empties /sys/fs/cgroup.

/** $1 = cgroup.procs files (':'-separated), $2 = netns path, $3 nsenter, $4 unshare, $5 = init script; the rest goes to init. */
export const LAUNCH_SCRIPT = `set -e
procs=$1 netns=$2 nsenter=$3 unshare=$4 init=$5
shift 5
saved_ifs=$IFS; IFS=:
for f in $procs; do echo $$ > "$f"; done
IFS=$saved_ifs
exec "$nsenter" --net="$netns" -- "$unshare" --mount --propagation slave --pid --fork --mount-proc -- /bin/sh -c "$init" berth-init "$@"
`;

/** $1 = dirs to hide (':'-separated, existing), $2 = data dir, $3 = tini, $4 = supervisor script; the rest is the agent argv. */
export const INIT_SCRIPT = `set -e
hide=$1 data=$2 tini=$3 supervisor=$4
shift 4
cd "$data"
exposed=0
saved_ifs=$IFS; IFS=:
for h in $hide; do
  IFS=$saved_ifs
  mount -t tmpfs -o mode=0755,size=64k,nosuid,nodev,noexec berth-hidden "$h"
  case "$data/" in
    "$h"/*)
      mkdir -p "$data"
      # "." is the cwd, still inside the hidden tree: the real data dir, bind-mounted back in place
      mount --no-canonicalize --bind . "$data"
      exposed=1 ;;
  esac
  mount -o remount,ro,nosuid,nodev,noexec "$h"
done
IFS=$saved_ifs
[ "$exposed" = 1 ] || mount --bind "$data" "$data"
mount -o remount,bind,ro /
mount -t tmpfs -o nosuid,nodev,mode=1777,size=65536k berth-shm /dev/shm
cd "$data"
exec "$tini" -- /bin/sh -c "$supervisor" berth-supervisor "$@"
`;

/**
 * The agent's argv is "$@". Reports the first agent pid on fd 3 (the launcher's readiness
 * pipe) and closes it. Restarts after 0.1 s, or 0.5 s when the agent lived under a second.
 */
export const SUPERVISOR_SCRIPT = `first=1
while :; do
  started=$(date +%s)
  "$@" 3>&- </dev/null &
  pid=$!
  if [ "$first" = 1 ]; then echo "agent $pid" >&3 || true; exec 3>&-; first=0; fi
  rc=0; wait "$pid" || rc=$?
  echo "berth-supervisor: agent (pid $pid) exited with status $rc; restarting" >&2
  if [ $(( $(date +%s) - started )) -lt 1 ]; then sleep 0.5; else sleep 0.1; fi
done
`;
