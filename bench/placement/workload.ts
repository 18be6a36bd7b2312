// The seeded workload of bench/placement. Everything derives from one seed (mulberry32), so
// every run places exactly the same tasks on exactly the same cluster.
//
// Cluster (N instances, provider "bench", 3 availability zones us-east-1a/b/c, one subnet
// each, instance i in zone i mod 3; all ACTIVE with a connected agent; instance types drawn):
//   40% m5a.2xlarge (8 vCPU, 32 GiB)   20% c6a.2xlarge (8 vCPU, 16 GiB)
//   20% r6a.2xlarge (8 vCPU, 64 GiB)   20% m5a.4xlarge (16 vCPU, 64 GiB)
//   registered = vCPU × 1024 CPU units, memory − 256 MiB; task ENIs = the type's ENIs − 1.
// Tasks (T tasks):
//   cpu      128: 20%, 256: 30%, 512: 25%, 1024: 17%, 2048: 8%           (mean 568 units)
//   memory   cpu × r MiB with r GiB per vCPU: 2: 30%, 4: 50%, 8: 20%      (mean 2,386 MiB)
//   group    service:svc-0 … svc-999, uniform
//   10%      awsvpc (one task network interface each)
//   2%       of the others a host port from {8080, 8081, 9090, 9100}
//   1%       distinctInstance, in one of 10 groups service:distinct-0…9
//   5%       memberOf "attribute:ecs.instance-type =~ m5a.*"
//   strategy the Managed Instances default (spread over zones, binpack cpu, then memory)
import { instanceType } from '../../src/domain/instance-types.js';
import { mulberry32 } from '../../src/placement/hash.js';
import { registeredCpu, registeredMemory, taskEnis } from '../../src/placement/instance-selection.js';
import type { InstanceSnapshot, TaskRequest } from '../../src/placement/types.js';

export const ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'];

function pick<T>(rand: () => number, table: readonly [T, number][]): T {
  let x = rand();
  for (const [v, w] of table) { if (x < w) return v; x -= w; }
  return table[table.length - 1]![0];
}

const TYPE_MIX: [string, number][] = [['m5a.2xlarge', 0.4], ['c6a.2xlarge', 0.2], ['r6a.2xlarge', 0.2], ['m5a.4xlarge', 0.2]];
export const CPU_MIX: [number, number][] = [[128, 0.2], [256, 0.3], [512, 0.25], [1024, 0.17], [2048, 0.08]];
export const RATIO_MIX: [number, number][] = [[2, 0.3], [4, 0.5], [8, 0.2]];
const PORTS = ['8080', '8081', '9090', '9100'];

export function makeInstances(n: number, seed: number): InstanceSnapshot[] {
  const rand = mulberry32(seed);
  const out: InstanceSnapshot[] = [];
  for (let i = 0; i < n; i++) {
    const t = instanceType(pick(rand, TYPE_MIX))!;
    const az = ZONES[i % 3]!;
    out.push({
      id: `ci-${String(i).padStart(6, '0')}`, ec2InstanceId: `i-${(0x10000000 + i).toString(16)}`, providerName: 'bench',
      status: 'ACTIVE', agentConnected: true, registeredAt: 1_700_000_000_000,
      registeredCpu: registeredCpu(t), registeredMemory: registeredMemory(t), usedCpu: 0, usedMemory: 0,
      tcpPortsUsed: ['22', '2375', '2376', '51678', '51679'], udpPortsUsed: [],
      eniMax: taskEnis(t), eniUsed: 0, runningTasksCount: 0, singleTask: false,
      availabilityZone: az, subnetId: `subnet-${az}`, instanceType: t.name, architecture: 'X86_64',
      privilegedCapabilities: [], fips: false,
    });
  }
  return out;
}

export interface TaskOptions {
  /** Include host ports, distinctInstance and memberOf tasks (default true). */
  constraints?: boolean;
  /** Fraction of awsvpc tasks (default 0.1). */
  awsvpc?: number;
}

export function makeTasks(n: number, seed: number, o: TaskOptions = {}): TaskRequest[] {
  const rand = mulberry32(seed ^ 0x5eed);
  const constraints = o.constraints ?? true;
  const awsvpcShare = o.awsvpc ?? 0.1;
  const out: TaskRequest[] = [];
  for (let i = 0; i < n; i++) {
    const cpu = pick(rand, CPU_MIX);
    const ratio = pick(rand, RATIO_MIX);
    const awsvpc = rand() < awsvpcShare;
    const t: TaskRequest = {
      id: `task-${String(i).padStart(7, '0')}`, providerName: 'bench', cpu, memory: cpu * ratio,
      group: `service:svc-${Math.floor(rand() * 1000)}`, awsvpc,
    };
    const r = rand();
    if (constraints) {
      if (!awsvpc && r < 0.02) t.tcpPorts = [PORTS[Math.floor(rand() * PORTS.length)]!];
      else if (r < 0.03) { t.group = `service:distinct-${Math.floor(rand() * 10)}`; t.constraints = [{ type: 'distinctInstance' }]; }
      else if (r < 0.08) t.constraints = [{ type: 'memberOf', expression: 'attribute:ecs.instance-type =~ m5a.*' }];
    }
    out.push(t);
  }
  return out;
}
