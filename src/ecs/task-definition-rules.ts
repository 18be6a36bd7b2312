// Task definition rules as pure functions: what RegisterTaskDefinition accepts, the
// defaults AWS fills in, which launch types a definition is compatible with, and the
// parameters managed instances do not support (each with a message saying what to change).
import { clientException, invalidParameter } from '../api/errors.js';
import { normalizeCapability } from '../domain/capabilities.js';
import { HOST_ACCESS_TAG } from '../domain/provider-settings.js';
import { sysctlProblem } from '../domain/sysctls.js';

export type Json = Record<string, any>;

export const MAX_TASK_DEFINITION_BYTES = 64 * 1024;
export const MAX_CONTAINERS = 10;
export const MAX_STOP_TIMEOUT_SECONDS = 120;
export const DEFAULT_STOP_TIMEOUT_SECONDS = 30;
const NAME = /^[a-zA-Z0-9_-]{1,255}$/;
/** Host paths a task may bind on an instance whose root is read-only. */
export const WRITABLE_HOST_PATHS = ['/var/', '/tmp/'];
export const SUPPORTED_LOG_DRIVERS = ['awslogs'];

/** `1024`, `1 vCPU`, `0.25 vcpu` → CPU units. */
export function parseTaskCpu(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^(\d+(?:\.\d+)?)\s*vcpu$/i.exec(t);
  return m ? Math.round(Number(m[1]) * 1024) : undefined;
}

/** `2048`, `2 GB`, `0.5GB` → MiB. */
export function parseTaskMemory(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^(\d+(?:\.\d+)?)\s*gb$/i.exec(t);
  return m ? Math.round(Number(m[1]) * 1024) : undefined;
}

const fail = (message: string): never => { throw clientException(message); };

function checkContainer(c: Json, td: Json, names: Set<string>, volumeNames: Set<string>, healthChecked: Set<string>): void {
  const n = c.name;
  if (n === undefined || n === '') fail('Container.name should not be null or empty.');
  if (!NAME.test(n)) fail(`Container name '${n}' is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed.`);
  if (c.image === undefined || String(c.image).trim() === '') fail('Container.image should not be null or empty.');
  if (String(c.image).length > 4096) fail(`Container '${n}': image reference is longer than 4096 characters.`);
  if (c.cpu !== undefined && (c.cpu < 0 || c.cpu > 196608)) fail(`Invalid 'cpu' setting for container '${n}': must be between 0 and 196608 CPU units.`);
  if (c.memory !== undefined && c.memory < 6) fail(`Invalid 'memory' setting for container '${n}': the minimum is 6 MiB.`);
  if (c.memoryReservation !== undefined && c.memoryReservation < 6) fail(`Invalid 'memoryReservation' setting for container '${n}': the minimum is 6 MiB.`);
  if (c.memory !== undefined && c.memoryReservation !== undefined && c.memoryReservation > c.memory) {
    fail(`Invalid setting for container '${n}': memoryReservation (${c.memoryReservation}) must be less than or equal to memory (${c.memory}).`);
  }
  if (c.memory === undefined && c.memoryReservation === undefined && td.memory === undefined) {
    fail(`Invalid setting for container '${n}'. At least one of 'memory' or 'memoryReservation' must be specified.`);
  }
  if (c.stopTimeout !== undefined && (c.stopTimeout < 0 || c.stopTimeout > MAX_STOP_TIMEOUT_SECONDS)) {
    fail(`Invalid 'stopTimeout' for container '${n}': must be between 0 and ${MAX_STOP_TIMEOUT_SECONDS} seconds; got ${c.stopTimeout}.`);
  }
  if (c.startTimeout !== undefined && (c.startTimeout < 2 || c.startTimeout > 600)) {
    fail(`Invalid 'startTimeout' for container '${n}': must be between 2 and 600 seconds; got ${c.startTimeout}.`);
  }
  for (const e of c.environment ?? []) {
    if (!e.name) fail(`Container '${n}': every environment variable needs a name.`);
  }
  const hc = c.healthCheck;
  if (hc) {
    const cmd: string[] = hc.command ?? [];
    if (cmd.length === 0 || !['CMD', 'CMD-SHELL', 'NONE'].includes(cmd[0]!)) {
      fail(`Invalid healthCheck for container '${n}': command must start with CMD, CMD-SHELL or NONE, e.g. ["CMD-SHELL", "curl -f http://localhost/ || exit 1"].`);
    }
    if (cmd[0] !== 'NONE' && cmd.length < 2) fail(`Invalid healthCheck for container '${n}': command needs at least one argument after ${cmd[0]}.`);
    const ranges: [string, number, number][] = [['interval', 5, 300], ['timeout', 2, 120], ['retries', 1, 10], ['startPeriod', 0, 300]];
    for (const [k, lo, hi] of ranges) {
      if (hc[k] !== undefined && (hc[k] < lo || hc[k] > hi)) fail(`Invalid healthCheck.${k} for container '${n}': must be between ${lo} and ${hi}; got ${hc[k]}.`);
    }
    if (cmd[0] !== 'NONE') healthChecked.add(n);
  }
  for (const u of c.ulimits ?? []) {
    if (u.softLimit > u.hardLimit) fail(`Invalid ulimit '${u.name}' for container '${n}': softLimit (${u.softLimit}) must not exceed hardLimit (${u.hardLimit}).`);
  }
  for (const key of ['add', 'drop'] as const) {
    for (const cap of c.linuxParameters?.capabilities?.[key] ?? []) {
      if (String(cap).toUpperCase() === 'ALL') continue;
      if (!normalizeCapability(String(cap))) {
        fail(`Invalid linuxParameters.capabilities.${key} value '${cap}' for container '${n}': not a Linux capability (e.g. NET_ADMIN, SYS_ADMIN, BPF).`);
      }
    }
  }
  checkDevices(c);
  for (const s of c.systemControls ?? []) {
    if (!s.namespace || s.value === undefined) fail(`Invalid systemControls for container '${n}': every entry needs a namespace and a value.`);
    const problem = sysctlProblem(String(s.namespace), td.networkMode, td.ipcMode);
    if (problem) throw invalidParameter(`Container '${n}': ${problem}`);
  }
  for (const mp of c.mountPoints ?? []) {
    if (!mp.sourceVolume || !volumeNames.has(mp.sourceVolume)) fail(`Invalid mountPoint for container '${n}': sourceVolume '${mp.sourceVolume ?? ''}' is not a volume of this task definition.`);
    if (!mp.containerPath || !String(mp.containerPath).startsWith('/')) fail(`Invalid mountPoint for container '${n}': containerPath must be an absolute path.`);
  }
  for (const vf of c.volumesFrom ?? []) {
    if (!vf.sourceContainer || !names.has(vf.sourceContainer) || vf.sourceContainer === n) {
      fail(`Invalid volumesFrom for container '${n}': sourceContainer '${vf.sourceContainer ?? ''}' must be another container of this task definition.`);
    }
  }
  const lc = c.logConfiguration;
  if (lc?.logDriver === 'awslogs') {
    if (!lc.options?.['awslogs-group']) fail(`Invalid logConfiguration for container '${n}': the awslogs driver needs the option awslogs-group.`);
  }
  const ports = new Set<string>();
  for (const pm of c.portMappings ?? []) {
    if (pm.containerPortRange !== undefined) {
      const m = /^(\d+)-(\d+)$/.exec(pm.containerPortRange);
      if (!m || +m[1]! < 1 || +m[2]! > 65535 || +m[1]! >= +m[2]!) fail(`Invalid containerPortRange '${pm.containerPortRange}' for container '${n}': use START-END with 1 <= START < END <= 65535.`);
      if (pm.containerPort !== undefined) fail(`Container '${n}': a port mapping can have containerPort or containerPortRange, not both.`);
      continue;
    }
    if (pm.containerPort === undefined) fail(`Container '${n}': every port mapping needs a containerPort or a containerPortRange.`);
    if (pm.containerPort < 1 || pm.containerPort > 65535) fail(`Invalid containerPort ${pm.containerPort} for container '${n}': must be between 1 and 65535.`);
    if (pm.hostPort !== undefined && (pm.hostPort < 0 || pm.hostPort > 65535)) fail(`Invalid hostPort ${pm.hostPort} for container '${n}': must be between 0 and 65535.`);
    const key = `${pm.containerPort}/${pm.protocol ?? 'tcp'}`;
    if (ports.has(key)) fail(`Container '${n}' maps port ${key} more than once.`);
    ports.add(key);
  }
}

const DEVICE_PERMISSIONS = ['read', 'write', 'mknod'];

/** linuxParameters.devices: instance device nodes under /dev, mapped to absolute paths. */
function checkDevices(c: Json): void {
  for (const d of c.linuxParameters?.devices ?? []) {
    const host = String(d.hostPath ?? '');
    if (!host.startsWith('/dev/') || host.split('/').includes('..')) {
      fail(`Invalid linuxParameters.devices hostPath '${host}' for container '${c.name}': it must be a device node under /dev/ (e.g. /dev/fuse).`);
    }
    const path = d.containerPath ?? host;
    if (!String(path).startsWith('/') || String(path).split('/').includes('..')) {
      fail(`Invalid linuxParameters.devices containerPath '${path}' for container '${c.name}': it must be an absolute path without '..'.`);
    }
    for (const p of d.permissions ?? []) {
      if (!DEVICE_PERMISSIONS.includes(p)) fail(`Invalid linuxParameters.devices permission '${p}' for container '${c.name}': use read, write or mknod.`);
    }
  }
}

function checkDependencies(containers: Json[], healthChecked: Set<string>): void {
  const names = new Set(containers.map((c) => c.name as string));
  const edges = new Map<string, string[]>();
  for (const c of containers) {
    const deps: string[] = [];
    for (const d of c.dependsOn ?? []) {
      if (!names.has(d.containerName) || d.containerName === c.name) {
        fail(`Invalid dependsOn for container '${c.name}': '${d.containerName}' must be another container of this task definition.`);
      }
      if (d.condition === 'HEALTHY' && !healthChecked.has(d.containerName)) {
        fail(`Invalid dependsOn for container '${c.name}': condition HEALTHY needs container '${d.containerName}' to define a healthCheck.`);
      }
      deps.push(d.containerName);
    }
    edges.set(c.name, deps);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'visiting') fail(`Container dependencies form a cycle: ${[...path, n].join(' -> ')}.`);
    state.set(n, 'visiting');
    for (const d of edges.get(n) ?? []) visit(d, [...path, n]);
    state.set(n, 'done');
  };
  for (const n of names) visit(n, []);
}

/** Reasons the definition cannot run on managed instances; empty when it can. */
export function managedInstancesProblems(td: Json): string[] {
  const out: string[] = [];
  const mode = td.networkMode ?? 'bridge';
  if (mode !== 'awsvpc' && mode !== 'host') out.push(`networkMode '${mode}' is not supported on managed instances; use awsvpc or host.`);
  const os = td.runtimePlatform?.operatingSystemFamily;
  if (os !== undefined && os !== 'LINUX') out.push(`runtimePlatform.operatingSystemFamily '${os}' is not supported on managed instances; use LINUX.`);
  // ipcMode host shares the instance's IPC namespace (needs the host-access opt-in); task and
  // none would need a shared per-task IPC namespace, which Berth does not make.
  if (td.ipcMode !== undefined && td.ipcMode !== 'host') out.push(`ipcMode '${td.ipcMode}' is not supported on managed instances; remove it (every task gets its own IPC namespace), or use host with the capacity provider tag ${HOST_ACCESS_TAG}=ipcMode:host.`);
  if (td.proxyConfiguration !== undefined) out.push('proxyConfiguration is not supported on managed instances; remove it.');
  if (td.ephemeralStorage !== undefined) out.push('ephemeralStorage is not supported on managed instances; size storage with the capacity provider\'s storageConfiguration instead.');
  if (td.inferenceAccelerators?.length) out.push('inferenceAccelerators are not supported on managed instances; remove them.');
  for (const v of td.volumes ?? []) {
    if (v.dockerVolumeConfiguration) out.push(`volume '${v.name}': dockerVolumeConfiguration is not supported on managed instances; use a host volume under ${WRITABLE_HOST_PATHS.join(' or ')}, or no sourcePath.`);
    if (v.efsVolumeConfiguration || v.fsxWindowsFileServerVolumeConfiguration || v.s3filesVolumeConfiguration) out.push(`volume '${v.name}': EFS, FSx and S3 Files volumes are not supported by Berth; use a host volume.`);
    if (v.configuredAtLaunch) out.push(`volume '${v.name}': volumes configured at launch (EBS) are not supported by Berth; use a host volume.`);
    const src = v.host?.sourcePath;
    if (src !== undefined && (!WRITABLE_HOST_PATHS.some((p) => src.startsWith(p)) || src.split('/').includes('..'))) {
      out.push(`volume '${v.name}': host.sourcePath '${src}' is outside the instance's writable locations; the instance root is read-only, so use a path under ${WRITABLE_HOST_PATHS.join(' or ')}.`);
    }
  }
  const perContainer: [string, string][] = [
    ['disableNetworking', 'disableNetworking'], ['dnsSearchDomains', 'dnsSearchDomains'], ['dnsServers', 'dnsServers'],
    ['dockerSecurityOptions', 'dockerSecurityOptions'], ['extraHosts', 'extraHosts'], ['hostname', 'hostname'], ['links', 'links'],
  ];
  for (const c of td.containerDefinitions ?? []) {
    for (const [k, label] of perContainer) {
      const v = c[k];
      if (v !== undefined && !(Array.isArray(v) && v.length === 0)) out.push(`container '${c.name}': ${label} is not supported on managed instances; remove it.`);
    }
    for (const k of ['maxSwap', 'sharedMemorySize', 'swappiness', 'tmpfs'] as const) {
      const v = c.linuxParameters?.[k];
      if (v !== undefined && !(Array.isArray(v) && v.length === 0)) out.push(`container '${c.name}': linuxParameters.${k} is not supported on managed instances; remove it.`);
    }
    const driver = c.logConfiguration?.logDriver;
    if (driver !== undefined && !SUPPORTED_LOG_DRIVERS.includes(driver)) {
      out.push(`container '${c.name}': log driver '${driver}' is not supported by Berth; use awslogs (logs are readable with the CloudWatch Logs API).`);
    }
    if (c.environmentFiles?.length) out.push(`container '${c.name}': environmentFiles (Amazon S3) are not supported by Berth; use environment or secrets.`);
    for (const pm of c.portMappings ?? []) {
      if (pm.hostPort !== undefined && pm.hostPort !== 0 && pm.containerPort !== undefined && pm.hostPort !== pm.containerPort) {
        out.push(`container '${c.name}': in ${mode} network mode hostPort must equal containerPort (${pm.hostPort} != ${pm.containerPort}).`);
      }
    }
  }
  return out;
}

function fargateProblems(td: Json): string[] {
  const out: string[] = [];
  if (td.networkMode !== 'awsvpc') out.push("Fargate only supports network mode 'awsvpc'.");
  if (td.cpu === undefined || td.memory === undefined) out.push('Fargate requires task definition to have execution role ARN, cpu and memory values.');
  return out;
}

function requiresAttributes(td: Json): { name: string }[] {
  const names = new Set<string>(['com.amazonaws.ecs.capability.docker-remote-api.1.18']);
  if (td.networkMode === 'awsvpc') names.add('ecs.capability.task-eni');
  if (td.taskRoleArn) names.add('com.amazonaws.ecs.capability.task-iam-role');
  for (const c of td.containerDefinitions) {
    if (c.logConfiguration?.logDriver) names.add(`com.amazonaws.ecs.capability.logging-driver.${c.logConfiguration.logDriver}`);
    if (c.healthCheck) names.add('ecs.capability.container-health-check');
    if (c.dependsOn?.length) names.add('ecs.capability.container-ordering');
    if (c.secrets?.length) names.add('ecs.capability.secrets.asm.environment-variables');
    if (c.linuxParameters?.initProcessEnabled) names.add('ecs.capability.init-process-enabled');
  }
  return [...names].sort().map((name) => ({ name }));
}

function withContainerDefaults(c: Json, networkMode: string | undefined): Json {
  const out: Json = {
    ...c,
    cpu: c.cpu ?? 0,
    portMappings: (c.portMappings ?? []).map((pm: Json) => ({
      ...pm,
      ...(pm.containerPort !== undefined && (networkMode === 'awsvpc' || networkMode === 'host') ? { hostPort: pm.hostPort || pm.containerPort } : {}),
      protocol: pm.protocol ?? 'tcp',
    })),
    essential: c.essential ?? true,
    environment: c.environment ?? [],
    mountPoints: c.mountPoints ?? [],
    volumesFrom: c.volumesFrom ?? [],
    systemControls: c.systemControls ?? [],
  };
  if (c.healthCheck) {
    out.healthCheck = { interval: 30, timeout: 5, retries: 3, ...c.healthCheck };
  }
  return out;
}

export interface NormalizedTaskDefinition {
  /** The definition as AWS returns it (without arn, revision, status, timestamps). */
  body: Json;
  compatibilities: string[];
}

/**
 * Validates a RegisterTaskDefinition request and returns the stored form.
 * Throws ClientException with a message naming what to change.
 */
export function normalizeTaskDefinition(input: Json): NormalizedTaskDefinition {
  const size = Buffer.byteLength(JSON.stringify(input));
  if (size > MAX_TASK_DEFINITION_BYTES) fail(`The task definition is ${size} bytes; the maximum is ${MAX_TASK_DEFINITION_BYTES} bytes (64 KiB).`);
  if (!NAME.test(input.family ?? '')) fail('Family contains invalid characters or is too long: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed.');
  const containers: Json[] = input.containerDefinitions ?? [];
  if (containers.length === 0) fail('Task definition must contain at least one container definition.');
  if (containers.length > MAX_CONTAINERS) fail(`Task definition can contain at most ${MAX_CONTAINERS} containers; it has ${containers.length}.`);
  const requires: string[] = input.requiresCompatibilities ?? [];
  const forManaged = requires.includes('MANAGED_INSTANCES');
  const td: Json = { ...input };
  delete td.tags;
  if (forManaged && td.networkMode === undefined) td.networkMode = 'awsvpc';

  if (td.cpu !== undefined) {
    const cpu = parseTaskCpu(td.cpu);
    if (cpu === undefined || cpu < 128 || cpu > 196608) fail(`Invalid 'cpu' setting for task: '${td.cpu}'. Use CPU units (e.g. 1024) or vCPUs (e.g. '1 vCPU'), between 128 units and 192 vCPU.`);
    td.cpu = String(cpu);
  }
  if (td.memory !== undefined) {
    const mem = parseTaskMemory(td.memory);
    if (mem === undefined || mem < 128 || mem > 24 * 1024 * 1024) fail(`Invalid 'memory' setting for task: '${td.memory}'. Use MiB (e.g. 2048) or GB (e.g. '2 GB'), at least 128 MiB.`);
    td.memory = String(mem);
  }
  const volumeNames = new Set<string>();
  for (const v of td.volumes ?? []) {
    if (!v.name || !NAME.test(v.name)) fail(`Volume name '${v.name ?? ''}' is invalid: up to 255 letters, numbers, hyphens and underscores.`);
    if (volumeNames.has(v.name)) fail(`Volume name '${v.name}' is used more than once.`);
    if (v.host?.sourcePath !== undefined) {
      const src = String(v.host.sourcePath);
      if (!src.startsWith('/')) fail(`Volume '${v.name}': host.sourcePath must be an absolute path.`);
      // Host paths resolve inside the instance's volume area; '.' and '..' never do.
      if (src.split('/').some((c) => c === '.' || c === '..')) {
        throw invalidParameter(`Volume '${v.name}': host.sourcePath '${src}' must not contain '.' or '..' components; name the directory directly, e.g. /var/lib/app.`);
      }
    }
    volumeNames.add(v.name);
  }
  const names = new Set<string>();
  for (const c of containers) {
    if (names.has(c.name)) fail(`Container name '${c.name}' is used more than once in the task definition.`);
    names.add(c.name);
  }
  const healthChecked = new Set<string>();
  for (const c of containers) checkContainer(c, td, names, volumeNames, healthChecked);
  checkDependencies(containers, healthChecked);
  if (!containers.some((c) => c.essential !== false)) fail('Task definition must have at least one essential container.');
  if (td.memory !== undefined) {
    const total = containers.reduce((s, c) => s + (c.memory ?? c.memoryReservation ?? 0), 0);
    if (total > Number(td.memory)) fail(`The containers' memory (${total} MiB in all) exceeds the task memory (${td.memory} MiB). Lower the containers' memory or raise the task's.`);
  }
  if (td.cpu !== undefined) {
    const total = containers.reduce((s, c) => s + (c.cpu ?? 0), 0);
    if (total > Number(td.cpu)) fail(`The containers' cpu (${total} units in all) exceeds the task cpu (${td.cpu} units).`);
  }
  const tdConstraints: Json[] = td.placementConstraints ?? [];
  if (tdConstraints.length > 10) fail('A task definition can have at most 10 placement constraints.');
  for (const pc of tdConstraints) {
    if (!pc.expression) fail('A memberOf placement constraint needs an expression, e.g. attribute:ecs.availability-zone in [us-east-1a, us-east-1b].');
  }

  td.containerDefinitions = containers.map((c) => withContainerDefaults(c, td.networkMode));
  td.volumes = (td.volumes ?? []).map((v: Json) => ({ ...v }));
  td.placementConstraints = tdConstraints;

  const managed = managedInstancesProblems(td);
  if (forManaged && managed.length > 0) {
    fail(`Task definition does not support the MANAGED_INSTANCES launch type: ${managed[0]}`);
  }
  if (requires.includes('FARGATE')) {
    const f = fargateProblems(td);
    if (f.length > 0) fail(f[0]!);
  }
  const compatibilities = ['EC2'];
  if (fargateProblems(td).length === 0) compatibilities.push('FARGATE');
  if (managed.length === 0) compatibilities.push('MANAGED_INSTANCES');
  td.requiresAttributes = requiresAttributes(td);
  return { body: td, compatibilities };
}
