// Builds the OCI runtime config (config.json) for one container of a task. Pure: everything it
// depends on (image config, the image's passwd/group text, host facts, the seccomp converter,
// resolved host paths) is passed in, so every rule below is unit-tested without a container.
//
// The defaults are Docker's (what ECS containers get on EC2), tightened where that costs a
// workload nothing: no inheritable/ambient capabilities, noNewPrivileges always on, the
// containers-common seccomp profile converted for the final capability set.
import type { ContainerSpec, TaskSpec } from '../protocol.js';
import type { Capability } from '../../domain/capabilities.js';
import { sysctlProblem } from '../../domain/sysctls.js';
import { checkPrivilegedGate, resolveCapabilities } from './capability-set.js';
import { deviceAccess, type DeviceNode } from './devices.js';
import { ContainerSpecError } from './errors.js';
import { checkHostAccessGate } from './host-access-gate.js';
import type { HostFacts } from './host-facts.js';
import type { ImageConfig } from './image-config.js';
import { RLIM_INFINITY, type OciConfig, type OciDevice, type OciMount, type OciNamespace, type OciResources, type OciRlimit } from './oci-types.js';
import type { OciSeccomp } from './seccomp.js';
import { resolveUser } from './users.js';

/** Docker's default masked and read-only paths (moby oci/defaults.go). */
export const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where Docker's `--init` puts its init; ECS's initProcessEnabled is that flag. */
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';
/** Fork-bomb guard when the runtime passes no task share (ECS has no pids setting; see cgroups.ts taskPidsMax). */
export const DEFAULT_PIDS_LIMIT = 4096;
/** The CFS period ECS's agent uses for task-level CPU limits. */
export const CFS_PERIOD_US = 100_000;

export const ANNOTATION_TASK_ARN = 'com.amazonaws.ecs.task-arn';
export const ANNOTATION_CONTAINER_NAME = 'com.amazonaws.ecs.container-name';
export const ANNOTATION_TASK_ID = 'dev.berth.task-id';

/** ECS ulimit names → kernel resources. */
const ULIMITS: Record<string, string> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK', msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO', rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK',
};

export interface SpecInput {
  task: TaskSpec;
  container: ContainerSpec;
  image: ImageConfig;
  /** Host path of the container's root filesystem (the mounted overlay). */
  rootfsPath: string;
  /** Absolute cgroup path, e.g. /berth/<instance>/<task>/<container id>. */
  cgroupsPath: string;
  /** The image's /etc/passwd and /etc/group ('' when absent), for a named `user`. */
  passwd: string;
  group: string;
  host: HostFacts;
  /** Converted seccomp profile for a bounding set (SeccompProfiles.forCapabilities). */
  seccompFor: (caps: readonly Capability[]) => OciSeccomp;
  /** The instance's hostname: containers in host network mode get it, as in Docker. */
  instanceHostname: string;
  /** Host path of each of the task's volumes, by volume name. */
  volumePaths: Record<string, string>;
  /** Per-task /etc files to bind in (Docker does the same for hosts, hostname, resolv.conf). */
  etcFiles?: { hosts?: string; hostname?: string; resolvConf?: string };
  /** Host path of a static tini, required when initProcessEnabled. */
  initBinary?: string;
  /** Join this PID namespace (pidMode "task": the task's shared namespace) instead of a new one. */
  pidNamespacePath?: string;
  /** The task's pids share (cgroups.ts taskPidsMax); each container gets it as its ceiling too. */
  pidsLimit?: number;
  /** Stats an instance device node for linuxParameters.devices (devices.ts statDevice). */
  statDevice: (hostPath: string) => DeviceNode;
}

/** awsvpc containers are named after their task, like Docker names a container by its id prefix. */
export function taskHostname(taskId: string): string {
  return taskId.replace(/[^a-zA-Z0-9-]/g, '').slice(0, 12).toLowerCase() || 'task';
}

/**
 * ECS's cpu units → cgroup v1 cpu.shares: the kernel accepts 2..262144; ECS's agent (≥ 1.2.0)
 * passes null, 0 and 1 as 2, and caps large values at 262144.
 */
export function cpuShares(cpu: number): number {
  return Math.min(262_144, Math.max(2, Math.floor(cpu || 0)));
}

/** Task-level CPU units → CFS quota over a 100 ms period (1024 units = one CPU); ≥ 1 ms as the kernel requires. */
export function cfsQuota(taskCpu: number): number {
  return Math.max(1000, Math.round((taskCpu / 1024) * CFS_PERIOD_US));
}

const MiB = 1024 * 1024;

export function buildOciSpec(input: SpecInput): OciConfig {
  const { task, container: c, image, host } = input;
  const name = c.name;

  // Names that become paths on the instance (task dir, volume mount points): never '..' or '/'.
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(task.taskId)) throw new ContainerSpecError(`task id '${task.taskId}' is not a task id.`);
  for (const v of task.volumes) {
    if (!/^[A-Za-z0-9_-]{1,255}$/.test(v.name)) throw new ContainerSpecError(`Volume name '${v.name}' may contain only letters, digits, hyphens and underscores.`);
  }
  // Capabilities, then the privilege gate, before anything else: refusing early is cheap.
  const caps = resolveCapabilities(c, host.boundingCapabilities);
  checkPrivilegedGate(c, caps, task.allowedPrivilegedCapabilities);
  checkHostAccessGate(task, c);
  const sysctl = sysctls(input);
  const devices = (c.devices ?? []).map((d) => device(name, d, input.statDevice));

  const user = resolveUser(name, c.user ?? image.user, input.passwd, input.group);
  let args = processArgs(c, image);
  const mounts = defaultMounts();

  if (c.initProcessEnabled) {
    if (!input.initBinary) {
      throw new ContainerSpecError(`Container '${name}' sets initProcessEnabled, but this instance has no static tini (install Debian's tini package).`);
    }
    mounts.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: input.initBinary, options: ['bind', 'ro', 'nosuid', 'nodev'] });
    args = [INIT_PATH_IN_CONTAINER, '--', ...args];
  }

  const hostname = task.networkMode === 'awsvpc' ? taskHostname(task.taskId) : input.instanceHostname;
  const etc = input.etcFiles ?? {};
  const etcOptions = ['rbind', 'rprivate', c.readonlyRootFilesystem ? 'ro' : 'rw'];
  if (etc.hosts) mounts.push({ destination: '/etc/hosts', type: 'bind', source: etc.hosts, options: etcOptions });
  if (etc.hostname) mounts.push({ destination: '/etc/hostname', type: 'bind', source: etc.hostname, options: etcOptions });
  if (etc.resolvConf) mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: etc.resolvConf, options: etcOptions });
  mounts.push(...volumeMounts(input));

  const cwd = c.workingDirectory || image.workingDir || '/';
  if (!cwd.startsWith('/')) throw new ContainerSpecError(`Container '${name}': workingDirectory '${cwd}' must be an absolute path.`);

  // Docker's privileged mode drops the masks and the seccomp filter: with CAP_SYS_ADMIN the
  // container could unmount the masks anyway. We keep the seccomp filter (converted for the
  // full set it allows nearly everything) and pass host devices in only as the definition's
  // linuxParameters.devices, with the provider's opt-in (see README.md).
  const privileged = c.privileged;

  const config: OciConfig = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: c.pseudoTerminal,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) },
      args,
      env: processEnv(image.env, c.environment, hostname, user.home),
      cwd,
      // Docker ≥ 20.10: bounding = effective = permitted; nothing inheritable or ambient,
      // so an exec'd non-root program never gains capabilities.
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
      noNewPrivileges: true,
    },
    root: { path: input.rootfsPath, readonly: c.readonlyRootFilesystem },
    hostname,
    mounts,
    annotations: {
      [ANNOTATION_TASK_ARN]: task.taskArn,
      [ANNOTATION_CONTAINER_NAME]: name,
      [ANNOTATION_TASK_ID]: task.taskId,
    },
    linux: {
      cgroupsPath: input.cgroupsPath,
      resources: resources(input, devices),
      namespaces: namespaces(input),
      maskedPaths: privileged ? [] : [...MASKED_PATHS],
      readonlyPaths: privileged ? [] : [...READONLY_PATHS],
      seccomp: input.seccompFor(caps),
      ...(devices.length ? { devices: devices.map((d) => d.node) } : {}),
      ...(Object.keys(sysctl).length ? { sysctl } : {}),
    },
  };
  const rlimits = ulimits(name, c.ulimits, host.hardLimits);
  if (rlimits.length) config.process.rlimits = rlimits;
  if (host.selinux) {
    // Only on hosts that really run SELinux: a label elsewhere would make runc fail (or lie).
    const label = selinuxLevel(task.taskId);
    config.process.selinuxLabel = `system_u:system_r:container_t:${label}`;
    config.linux.mountLabel = `system_u:object_r:container_file_t:${label}`;
  }
  return config;
}

/** Docker's rule: an entryPoint override drops the image's Cmd; a command alone keeps the image's Entrypoint. */
export function processArgs(c: Pick<ContainerSpec, 'name' | 'entryPoint' | 'command'>, image: ImageConfig): string[] {
  const entry = c.entryPoint?.length ? c.entryPoint : undefined;
  const cmd = c.command?.length ? c.command : undefined;
  const args = entry ? [...entry, ...(cmd ?? [])] : [...(image.entrypoint ?? []), ...(cmd ?? image.cmd ?? [])];
  if (!args.length) {
    throw new ContainerSpecError(`Container '${c.name}': no command specified (the image has no Entrypoint or Cmd, and the container definition sets neither entryPoint nor command).`);
  }
  return args;
}

/** Image env, overridden by the container's, plus what Docker adds (PATH, HOSTNAME, HOME). */
export function processEnv(imageEnv: readonly string[], containerEnv: readonly { name: string; value: string }[], hostname: string, home: string): string[] {
  const env = new Map<string, string>();
  const put = (k: string, v: string) => { env.delete(k); env.set(k, v); };
  for (const kv of imageEnv) {
    const i = kv.indexOf('=');
    if (i > 0) put(kv.slice(0, i), kv.slice(i + 1));
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH.slice('PATH='.length));
  env.set('HOSTNAME', hostname);
  for (const { name, value } of containerEnv) put(name, value);
  if (!env.has('HOME')) env.set('HOME', home || '/');
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** runc's default mounts (`runc spec`), which are also Docker's, with Docker's 64 MiB /dev/shm. */
function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // A fresh sysfs (not a bind of the agent's /sys): in host network mode it shows the
    // instance's interfaces only, where a bind would show the host machine's.
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

function volumeMounts(input: SpecInput): OciMount[] {
  const { container: c, task } = input;
  return c.mountPoints.map((m) => {
    if (!m.containerPath.startsWith('/') || m.containerPath.split('/').includes('..')) {
      throw new ContainerSpecError(`Container '${c.name}': mount point containerPath '${m.containerPath}' must be an absolute path without '..'.`);
    }
    if (!task.volumes.some((v) => v.name === m.sourceVolume) || !input.volumePaths[m.sourceVolume]) {
      throw new ContainerSpecError(`Container '${c.name}': mount point sourceVolume '${m.sourceVolume}' is not a volume of the task.`);
    }
    // nosuid/nodev: a volume is written by tasks (a host volume by any task of the instance).
    return { destination: m.containerPath, type: 'bind', source: input.volumePaths[m.sourceVolume]!, options: ['rbind', 'rprivate', 'nosuid', 'nodev', m.readOnly ? 'ro' : 'rw'] };
  });
}

function namespaces(input: SpecInput): OciNamespace[] {
  const { task } = input;
  const ns: OciNamespace[] = [];
  // pidMode/ipcMode "host" share the instance's namespace (the agent's): the container can see,
  // signal and (root with the default caps, ptrace allowed) trace every process of the instance
  // and read other tasks' /proc/<pid>/environ and root, secrets included. Never the machine's,
  // and only with the provider's opt-in (checkHostAccessGate).
  if (task.pidMode !== 'host') ns.push(input.pidNamespacePath ? { type: 'pid', path: input.pidNamespacePath } : { type: 'pid' });
  if (task.ipcMode !== 'host') ns.push({ type: 'ipc' });
  ns.push({ type: 'uts' }, { type: 'mount' });
  if (task.networkMode === 'awsvpc') {
    const path = task.network?.netnsPath;
    if (!path) throw new ContainerSpecError(`Task ${task.taskId} uses awsvpc but has no network namespace attached yet.`);
    // Checked here too (a forged desired state must not name the instance's pull namespace,
    // which reaches the registry relays, or another task's): the provider names each task's
    // namespace after the task, under /run/netns.
    if (!/^\/run\/netns\/[A-Za-z0-9_-]+$/.test(path) || !path.endsWith(`-task-${task.taskId}`)) {
      throw new ContainerSpecError(`Task ${task.taskId}: network namespace ${path} is not this task's.`);
    }
    ns.push({ type: 'network', path });
  }
  // host network mode: no entry, so the container shares the agent's (the instance's) netns.
  return ns;
}

/** A linuxParameters.devices entry: the node runc creates, and its devices-cgroup rule. */
function device(container: string, d: NonNullable<ContainerSpec['devices']>[number], stat: SpecInput['statDevice']): { node: OciDevice; access: string } {
  const path = d.containerPath || d.hostPath;
  if (!path.startsWith('/') || path.split('/').includes('..')) {
    throw new ContainerSpecError(`Container '${container}': device containerPath '${path}' must be an absolute path without '..'.`);
  }
  if (!d.hostPath.startsWith('/dev/') || d.hostPath.split('/').includes('..')) {
    throw new ContainerSpecError(`Container '${container}': device hostPath '${d.hostPath}' must be a device node under /dev/.`);
  }
  const n = stat(d.hostPath);
  const access = deviceAccess(d.permissions);
  if (!access) throw new ContainerSpecError(`Container '${container}': device ${d.hostPath} has no permissions (use read, write and/or mknod).`);
  return { node: { path, type: n.type, major: n.major, minor: n.minor, fileMode: n.fileMode, uid: n.uid, gid: n.gid }, access };
}

/** systemControls → linux.sysctl, namespaced sysctls only (checked at registration; again here). */
function sysctls(input: SpecInput): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of input.container.systemControls ?? []) {
    const problem = sysctlProblem(s.namespace, input.task.networkMode, input.task.ipcMode);
    if (problem) throw new ContainerSpecError(`Container '${input.container.name}': ${problem}`);
    out[s.namespace] = s.value;
  }
  return out;
}

function resources(input: SpecInput, devices: { node: OciDevice; access: string }[]): OciResources {
  const { task, container: c } = input;
  const r: OciResources = {
    // runc adds its default allowed devices (null, zero, full, tty, random, urandom, pts...);
    // then each mapped device with exactly the permissions asked for.
    devices: [{ allow: false, access: 'rwm' }, ...devices.map((d) => ({ allow: true, type: d.node.type, major: d.node.major, minor: d.node.minor, access: d.access }))],
    cpu: { shares: cpuShares(c.cpu) },
    pids: { limit: input.pidsLimit ?? DEFAULT_PIDS_LIMIT },
  };
  // The task-level limits live on the task's cgroup (all containers share them); they are
  // repeated on each container as a ceiling in case the task cgroup is ever missing.
  if (task.cpu) r.cpu = { ...r.cpu, quota: cfsQuota(task.cpu), period: CFS_PERIOD_US };
  const limitMiB = c.memory ?? task.memory;
  const memory: { limit?: number; reservation?: number } = {};
  if (limitMiB) memory.limit = limitMiB * MiB;
  if (c.memoryReservation) memory.reservation = c.memoryReservation * MiB;
  if (memory.limit !== undefined && memory.reservation !== undefined && memory.reservation > memory.limit) {
    throw new ContainerSpecError(`Container '${c.name}': memoryReservation (${c.memoryReservation} MiB) is above its memory limit (${limitMiB} MiB).`);
  }
  if (Object.keys(memory).length) r.memory = memory;
  return r;
}

/** ECS ulimits → OCI rlimits, refusing any hard limit above the agent's own (runc would fail obscurely). */
export function ulimits(container: string, list: readonly { name: string; softLimit: number; hardLimit: number }[], hardLimits: Record<string, number>): OciRlimit[] {
  return list.map((u) => {
    const type = ULIMITS[u.name.toLowerCase()];
    if (!type) throw new ContainerSpecError(`Container '${container}': unknown ulimit '${u.name}'. Valid names: ${Object.keys(ULIMITS).join(', ')}.`);
    const value = (n: number) => (n === -1 ? Infinity : n);
    const soft = value(u.softLimit);
    const hard = value(u.hardLimit);
    if (!Number.isInteger(u.softLimit) || !Number.isInteger(u.hardLimit) || u.softLimit < -1 || u.hardLimit < -1) {
      throw new ContainerSpecError(`Container '${container}': ulimit ${u.name} limits must be integers (-1 for unlimited).`);
    }
    if (soft > hard) throw new ContainerSpecError(`Container '${container}': ulimit ${u.name} softLimit ${u.softLimit} is above its hardLimit ${u.hardLimit}.`);
    const max = hardLimits[type] ?? Infinity;
    if (hard > max) {
      throw new ContainerSpecError(`Container '${container}': ulimit ${u.name} hardLimit ${u.hardLimit === -1 ? 'unlimited' : u.hardLimit} is above this instance's hard limit ${max}; the agent cannot raise limits above its own. Use at most ${max}.`);
    }
    const oci = (n: number) => (n === Infinity ? RLIM_INFINITY : n);
    return { type, soft: oci(soft), hard: oci(hard) };
  });
}

/** A per-task MCS level (two distinct categories of c0..c1023), stable for the task id. */
export function selinuxLevel(taskId: string): string {
  let h = 2166136261;
  for (const ch of taskId) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const a = h % 1024;
  let b = (h >>> 10) % 1024;
  if (b === a) b = (b + 1) % 1024;
  return `s0:c${Math.min(a, b)},c${Math.max(a, b)}`;
}
