// The shapes the placement core works on: a snapshot of instances, a task request, and the
// decision (placed, or why not). Everything here is plain data; the core never does I/O,
// never reads a clock and never calls Math.random.

/**
 * Why an instance cannot take a task, in the order the filters run (cheap and static first,
 * resources last). The names are ECS's where ECS has one (`RESOURCE:*`, `MISSING ATTRIBUTE`).
 */
export const REASONS = [
  'INSTANCE_STATUS',
  'SINGLE_TASK',
  'FIPS',
  'PRIVILEGED_CAPABILITY',
  'HOST_ACCESS',
  'MISSING ATTRIBUTE',
  'MEMBER_OF',
  'DISTINCT_INSTANCE',
  'RESOURCE:CPU',
  'RESOURCE:MEMORY',
  'RESOURCE:PORTS',
  'RESOURCE:ENI',
] as const;
export type Reason = (typeof REASONS)[number];

/** A failure that is not about one instance: nothing to place on, or a request that can never run. */
export type FailureReason = Reason | 'NO_INSTANCES' | 'NOT_FOUND';

export type CpuArchitecture = 'X86_64' | 'ARM64';

export interface AttributeLike { name: string; value?: string }

/** One container instance as placement sees it. The engine copies what it needs; it never mutates this. */
export interface InstanceSnapshot {
  /** Container instance id (the last part of its ARN). */
  id: string;
  ec2InstanceId?: string;
  providerName: string;
  /** `ACTIVE` takes tasks; `DRAINING`, `REGISTERING`, `DEREGISTERING`, … never do. */
  status: string;
  agentConnected: boolean;
  agentVersion?: string;
  /** Epoch ms (for the query language's `registeredAt`). */
  registeredAt?: number;
  registeredCpu: number;
  registeredMemory: number;
  usedCpu: number;
  usedMemory: number;
  tcpPortsUsed?: readonly string[];
  udpPortsUsed?: readonly string[];
  /** Network interfaces tasks may use (the type's count minus the instance's own) and those in use. */
  eniMax: number;
  eniUsed: number;
  /** Tasks on the instance that are not STOPPED (running and pending). */
  runningTasksCount: number;
  /** Task group → number of such tasks on the instance (`service:web`, `family:batch`, …). */
  taskGroups?: Readonly<Record<string, number>>;
  singleTask: boolean;
  availabilityZone: string;
  subnetId: string;
  instanceType: string;
  architecture: CpuArchitecture;
  /** Agent-reported and custom attributes; `ecs.availability-zone`, `ecs.subnet-id`,
   *  `ecs.instance-type`, `ecs.cpu-architecture` and `ecs.os-type` are derived from the fields above. */
  attributes?: readonly AttributeLike[] | Readonly<Record<string, string>>;
  /** Capabilities outside Docker's default set that the instance's provider allowed at launch. */
  privilegedCapabilities: readonly string[];
  /** Host access (`pidMode:host`, `ipcMode:host`, `devices`) the instance's provider allowed at launch; none when unset. */
  hostAccess?: readonly string[];
  /** The instance runs a FIPS-140 kernel (a FIPS provider's instance). */
  fips: boolean;
}

export interface PlacementConstraint { type: 'distinctInstance' | 'memberOf' | string; expression?: string }
export interface PlacementStrategy { type: 'binpack' | 'spread' | 'random' | string; field?: string }

/** What one task needs. Build it once per task and do not change it afterwards; `id` seeds every random choice. */
export interface TaskRequest {
  id: string;
  /** Only instances of this capacity provider are considered (all when unset). */
  providerName?: string;
  cpu: number;
  memory: number;
  /** Host ports (host network mode only; awsvpc tasks have their own namespace). */
  tcpPorts?: readonly string[];
  udpPorts?: readonly string[];
  /** awsvpc network mode: the task takes one of the instance's network interfaces. */
  awsvpc?: boolean;
  /** `runtimePlatform.cpuArchitecture`; unset runs anywhere. */
  cpuArchitecture?: CpuArchitecture;
  /** The task definition's constraints followed by the request's (RunTask / service). */
  constraints?: readonly PlacementConstraint[];
  /** The request's placementStrategy; unset or empty: the Managed Instances default. */
  strategy?: readonly PlacementStrategy[];
  /** Capabilities outside Docker's default set the task adds (`privileged: true` = all of them). */
  privilegedCapabilities?: readonly string[];
  /** Host access the task asks for (`pidMode:host`, `ipcMode:host`, `devices`). */
  hostAccess?: readonly string[];
  /** The task definition's requiresAttributes. */
  requiresAttributes?: readonly AttributeLike[];
  /** Task group (`service:<name>` or `family:<family>` by default); spread and distinctInstance count per group. */
  group?: string;
  /** The capacity provider is FIPS-enabled: only FIPS instances, only X86_64 or unset architectures. */
  fipsRequired?: boolean;
  /** StartTask: only this instance. */
  pinnedInstanceId?: string;
  /** awsvpcConfiguration.subnets: only instances in these subnets. */
  subnets?: readonly string[];
}

export interface ClosestInstance {
  instanceId: string;
  ec2InstanceId?: string;
  reason: Reason;
  /** What exactly was missing, e.g. "has 512 MiB of memory free; the task needs 1024 MiB". */
  detail: string;
}

export interface PlacementFailure {
  reason: FailureReason;
  /** How many instances each filter rejected (each instance counted once, under its first failing filter). */
  counts: Partial<Record<Reason, number>>;
  /** The instance that passed the most filters (ECS's "closest matching container-instance"). */
  closest?: ClosestInstance;
  /** Berth's own explanation. */
  message: string;
}

export type PlacementDecision =
  | { placed: true; instanceId: string; instance: InstanceSnapshot; availabilityZone: string; subnetId: string }
  | { placed: false; failure: PlacementFailure };
