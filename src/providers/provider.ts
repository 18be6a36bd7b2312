// Instance providers: how Berth launches and terminates the "EC2 instances" of managed-instances
// capacity providers. The control plane picks instance ids and decides when to launch or
// terminate; a provider only turns that into host resources, and cleans them up after a crash.
import type { InstanceType } from '../domain/instance-types.js';

export interface InstanceLaunchSpec {
  /** EC2-style id chosen by the control plane, e.g. `i-0abc123def4567890` (`i-` + 8 to 17 hex digits). */
  instanceId: string;
  /** vcpu and memoryMiB size the instance (on the local provider: its cgroup limits). */
  instanceType: InstanceType;
  subnetId: string;
  availabilityZone: string;
  agent: {
    /** argv of the agent, run inside the instance; restarted by the instance's supervisor whenever it exits. */
    command: string[];
    /** Added to the agent's environment (after the provider's own BERTH_* variables, so these win). */
    env: Record<string, string>;
    /** Written to `<dataDir>/bootstrap-token` (mode 0600), never put in the environment. */
    bootstrapToken: string;
  };
}

export interface LaunchedInstance {
  instanceId: string;
  privateIpv4Address: string;
  /** The instance's only writable directory (also its HOME; TMPDIR is `<dataDir>/tmp`). */
  dataDir: string;
  /** The instance's cgroup, the same path in every cgroup v1 controller (e.g. `/berth/i-0abc…`). */
  cgroupPath: string;
  /** Host PID of the instance's PID 1 (its init); SIGKILL of it ends the whole instance. */
  initPid: number;
}

/** Like an ENI attached for an awsvpc task: a network namespace with its own address. */
export interface TaskNetwork {
  /** Visible inside the instance too (e.g. `/run/netns/berth3-task-<taskId>`); give it to runc. */
  netnsPath: string;
  ipv4Address: string;
  gateway: string;
  prefixLength: number;
  macAddress: string;
  /** `eni-` + 17 hex digits. */
  interfaceId: string;
}

export interface InstanceProvider {
  readonly name: string;
  /** What is missing on this host for this provider (root, binaries, kernel features); empty when ready. */
  check(): Promise<string[]>;
  /** Host-wide set-up, idempotent (bridge, address range, cgroup roots). Returns the address agents dial (the gateway). */
  prepare(): Promise<{ gatewayAddress: string }>;
  /** Creates and starts the instance; resolves once its agent process is running. */
  launch(spec: InstanceLaunchSpec): Promise<LaunchedInstance>;
  /** Removes everything the instance created (processes, networks, cgroups, data dir). Idempotent. */
  terminate(instanceId: string): Promise<void>;
  isAlive(instanceId: string): Promise<boolean>;
  /** Instances this provider holds on disk (launched and not terminated), alive or not. */
  list(): Promise<LaunchedInstance[]>;
  /**
   * After a control-plane crash: keep the `keep` instances (re-attach), remove every other instance
   * of THIS Berth, including half-launched ones and task networks of removed instances.
   */
  recover(keep: string[]): Promise<{ removed: string[] }>;
  /** Like attaching an ENI: a network namespace with its own address on the instance's network, for an awsvpc task. Idempotent per task. */
  attachTaskNetwork(instanceId: string, taskId: string): Promise<TaskNetwork>;
  /** Idempotent. */
  detachTaskNetwork(taskId: string): Promise<void>;
  /**
   * The agent gateway listens on `gatewayAddress:port` (called once it does, after prepare(),
   * for each port it listens on): instances, and nothing else on their network, may reach it.
   */
  gatewayListening(port: number): Promise<void>;
  /**
   * Makes a registry on the host's loopback (e.g. "127.0.0.1:5000") reachable for the agents'
   * pulls (only: no container reaches it, and it relays pulls, never pushes); returns the
   * "HOST:PORT" agents dial instead.
   */
  ensureRegistryForward(loopbackHostPort: string): Promise<string>;
  /** Stops forwarders etc.; does NOT terminate instances (they outlive the control plane). */
  close(): Promise<void>;
}
