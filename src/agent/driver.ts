// What the agent needs from its container runtime, as one small interface: the task
// workers speak only to this, so they can be tested and so the runtime can change.
import type { ContainerSpec, TaskSpec } from './protocol.js';
import type { TerminalProcess } from './runtime/index.js';

export interface PulledImage { image: string; digest: string }

export interface ContainerObservation {
  runtimeId: string;
  taskId: string;
  containerName: string;
  state: 'created' | 'running' | 'stopped' | 'unknown';
  exitCode?: number;
  oomKilled?: boolean;
}

/** Events read from a container's log; `cursor` is opaque and says where the next read starts. */
export interface LogChunk {
  /** `pos`: where the event starts in `source` (a byte position, strictly increasing). */
  events: { timestamp: number; message: string; pos: number }[];
  cursor: string;
  /** The file the events were read from: with their positions, a resent batch is recognised. */
  source: string;
}

export interface ContainerDriver {
  pull(image: string, registryForwards: Record<string, string>): Promise<PulledImage>;
  /** Creates (not starts) the container; returns its runtime id. Idempotent per (task, container). */
  create(task: TaskSpec, container: ContainerSpec, image: PulledImage): Promise<string>;
  start(runtimeId: string): Promise<void>;
  /** SIGTERM, then SIGKILL after `timeoutSeconds`; resolves when the stop was sent (exit is an event). */
  stop(runtimeId: string, timeoutSeconds: number): Promise<void>;
  inspect(runtimeId: string): Promise<ContainerObservation>;
  /** Removes the container and its resources once it has stopped. */
  remove(runtimeId: string): Promise<void>;
  /** Every container the runtime has on disk (used to re-adopt after an agent restart). */
  list(): Promise<ContainerObservation[]>;
  /** Subscribes to container exits. */
  onExit(listener: (runtimeId: string) => void): void;
  /** Reads what the container wrote after `cursor` (undefined: from the start); `final` includes a trailing partial line. */
  readLogs(runtimeId: string, cursor: string | undefined, final?: boolean): Promise<LogChunk>;
  taskStats(taskId: string): Promise<{ cpuSeconds: number; memoryBytes: number } | undefined>;
  /** Cleans task-level resources (task cgroup, volumes) once all its containers are removed. */
  cleanupTask(taskId: string): Promise<void>;
  /** Runs a command in a running container without a terminal (health checks). */
  exec(runtimeId: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
  /** Runs a command in a running container on a pseudo-terminal of `cols`×`rows` (ECS Exec). */
  openTerminal(runtimeId: string, argv: string[], size: { cols: number; rows: number }): Promise<TerminalProcess>;
  /** Whether the container runtime (runc, conmon) works; a reason when it does not. */
  checkRuntime(): Promise<{ ok: boolean; reason?: string }>;
  /** CPU units and MiB this instance offers, measured from its cgroup. */
  resources(): { cpu: number; memory: number };
}
