// The instance agent protocol: JSON messages over one WebSocket that the agent dials out
// to the control plane's gateway. The control plane sends the full desired state of the
// instance (level-triggered); the agent reports what it observes.

/** Task statuses in the order a task moves through them; they never go backwards. */
export const TASK_STATUSES = [
  'PROVISIONING', 'PENDING', 'ACTIVATING', 'RUNNING', 'DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export function statusRank(s: string): number {
  return TASK_STATUSES.indexOf(s as TaskStatus);
}

/** The later of two statuses (statuses move forward only). */
export function laterStatus<T extends string>(a: T, b: T): T {
  return statusRank(b) > statusRank(a) ? b : a;
}

export type ContainerStatus = 'PENDING' | 'RUNNING' | 'STOPPED';

export interface PortMappingSpec { containerPort: number; hostPort: number; protocol: 'tcp' | 'udp' }

export interface ContainerSpec {
  name: string;
  image: string;
  /** Resolved process: entryPoint/command from the definition and overrides (image defaults apply when empty). */
  entryPoint?: string[];
  command?: string[];
  environment: { name: string; value: string }[];
  workingDirectory?: string;
  user?: string;
  essential: boolean;
  cpu: number;
  memory?: number;
  memoryReservation?: number;
  readonlyRootFilesystem: boolean;
  privileged: boolean;
  /** Capabilities to add/drop, normalised to CAP_* names ("ALL" kept as is). */
  capabilitiesAdd: string[];
  capabilitiesDrop: string[];
  initProcessEnabled: boolean;
  stopTimeoutSeconds: number;
  portMappings: PortMappingSpec[];
  ulimits: { name: string; softLimit: number; hardLimit: number }[];
  dependsOn: { containerName: string; condition: 'START' | 'COMPLETE' | 'SUCCESS' | 'HEALTHY' }[];
  healthCheck?: { command: string[]; interval: number; timeout: number; retries: number; startPeriod: number };
  mountPoints: { sourceVolume: string; containerPath: string; readOnly: boolean }[];
  /** Where logs go (CloudWatch Logs names). */
  log: { group: string; stream: string };
  pseudoTerminal: boolean;
  interactive: boolean;
  /** linuxParameters.devices: instance device nodes mapped in (needs the devices host-access opt-in). */
  devices?: DeviceSpec[];
  /** systemControls: namespaced sysctls (checked at registration, and again by the agent). */
  systemControls?: { namespace: string; value: string }[];
}

export interface DeviceSpec { hostPath: string; containerPath: string; permissions: ('read' | 'write' | 'mknod')[] }

export interface VolumeSpec { name: string; hostSourcePath?: string }

export interface TaskSpec {
  taskArn: string;
  taskId: string;
  family: string;
  revision: number;
  desiredStatus: 'RUNNING' | 'STOPPED';
  networkMode: 'awsvpc' | 'host';
  /** For awsvpc: the network namespace the control plane attached (like an ENI) and its address. */
  network?: { netnsPath: string; ipv4Address: string; gateway: string; prefixLength: number };
  cpu?: number;
  memory?: number;
  pidMode?: 'host' | 'task';
  /** Only 'host' (with the opt-in): managed instances refuse the other ipcModes at registration. */
  ipcMode?: 'host';
  containers: ContainerSpec[];
  volumes: VolumeSpec[];
  /** Privileged capabilities the instance's provider allows (checked again by the agent; none when absent). */
  allowedPrivilegedCapabilities: string[];
  /** Host access the instance's provider allows (pidMode:host, ipcMode:host, devices; checked again by the agent). */
  allowedHostAccess?: string[];
  enableExecuteCommand: boolean;
  /** Why the control plane wants the task stopped, when it does. */
  stopReason?: string;
  stopCode?: string;
}

export interface ContainerReport {
  name: string;
  lastStatus: ContainerStatus;
  runtimeId?: string;
  exitCode?: number;
  reason?: string;
  imageDigest?: string;
  healthStatus?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
  networkBindings?: { bindIP: string; containerPort: number; hostPort: number; protocol: string }[];
}

export interface TaskReport {
  taskArn: string;
  lastStatus: TaskStatus;
  /** From the essential containers' health checks: UNHEALTHY if any is, HEALTHY if all checked ones are. */
  healthStatus?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
  containers: ContainerReport[];
  stoppedReason?: string;
  stopCode?: string;
  /** Epoch ms of transitions the agent observed. */
  pullStartedAt?: number;
  pullStoppedAt?: number;
  startedAt?: number;
  stoppingAt?: number;
  executionStoppedAt?: number;
  stoppedAt?: number;
}

export interface Attribute { name: string; value?: string }

export interface LogEventBatch {
  group: string;
  stream: string;
  /** The file the events were read from; with each event's position in it, a resent batch is stored once. */
  source: string;
  /** `pos`: the byte position where the event starts in `source`, strictly increasing. */
  events: { timestamp: number; message: string; pos: number }[];
}

/**
 * ECS Exec over the agent's own connection (the instance never listens): the control plane's
 * session broker opens a command in a running container of a task started with
 * enableExecuteCommand, relays keystrokes, terminal size and flow control; the agent streams
 * the pseudo-terminal's output and the exit code back. Bytes travel base64-encoded.
 */
export type ExecControlMessage =
  | { type: 'exec-open'; sessionId: string; taskArn: string; runtimeId: string; argv: string[]; cols: number; rows: number }
  | { type: 'exec-input'; sessionId: string; data: string }
  | { type: 'exec-resize'; sessionId: string; cols: number; rows: number }
  /** Pause (true) or resume reading the terminal while the client is behind on acknowledgements. */
  | { type: 'exec-flow'; sessionId: string; pause: boolean }
  /** Ends the command (and everything it started in its session). */
  | { type: 'exec-close'; sessionId: string };

export type ExecAgentMessage =
  | { type: 'exec-output'; sessionId: string; data: string }
  /** The command ended; `error` when it could not be started at all. */
  | { type: 'exec-exit'; sessionId: string; exitCode: number; error?: string };

export type AgentMessage =
  | { type: 'hello'; instanceId: string; bootstrapToken?: string; credential?: string; agentVersion: string }
  | { type: 'register'; attributes: Attribute[]; resources: { cpu: number; memory: number }; tasks: TaskReport[]; agentPid: number }
  | { type: 'task'; report: TaskReport }
  | { type: 'logs'; batch: LogEventBatch; seq: number }
  | { type: 'metrics'; tasks: { taskArn: string; cpuSeconds: number; memoryBytes: number }[] }
  | { type: 'heartbeat'; at: number }
  /** The agent's own check of its container runtime (runc, conmon), sent when it changes. */
  | { type: 'health'; runtime: 'OK' | 'IMPAIRED'; reason?: string }
  | ExecAgentMessage;

export type ControlMessage =
  | { type: 'welcome'; containerInstanceArn: string; credential?: string; heartbeatIntervalMs: number }
  | { type: 'desired'; tasks: TaskSpec[]; registryForwards: Record<string, string> }
  | { type: 'ack'; seq: number }
  | { type: 'error'; message: string }
  | ExecControlMessage;
