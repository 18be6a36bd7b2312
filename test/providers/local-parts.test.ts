// The local provider's pure parts and file-based allocators (no root needed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AddressPool, addressOfHostVeth, hostVethName, macForAddress } from '../../src/providers/local/addresses.js';
import { limitsFor } from '../../src/providers/local/cgroups.js';
import { parseLoopback } from '../../src/providers/local/forwarder.js';
import { MAX_SLOTS, SlotLeases, slotNetwork } from '../../src/providers/local/host-lease.js';

const work = mkdtempSync(join(tmpdir(), 'berth-provider-parts-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('slot networks: bridge, subnet and gateway per slot; names fit the kernel limit', () => {
  assert.deepEqual(slotNetwork(3), { slot: 3, bridge: 'berth3', octet: 203, subnet: '10.203.0.0/16', gateway: '10.203.0.1', prefixLength: 16 });
  const last = slotNetwork(MAX_SLOTS - 1);
  assert.equal(last.octet, 255);
  const veth = hostVethName(last, '10.255.255.254');
  assert.equal(veth, 'bv55-255-254');
  assert.ok(veth.length <= 15);
  assert.equal(addressOfHostVeth(last, veth), '10.255.255.254');
  assert.equal(addressOfHostVeth(slotNetwork(5), veth), undefined, "another slot's veth is not ours");
  assert.equal(macForAddress('10.200.1.2'), '02:b7:0a:c8:01:02');
});

test('instance limits follow the instance type', () => {
  assert.deepEqual(limitsFor(2, 1024), {
    memoryBytes: 1024 ** 3, cpuPeriodUs: 100_000, cpuQuotaUs: 200_000, cpuShares: 2048, pidsMax: 4096,
    // The tasks' share leaves the agent and runtime their reserve.
    tasksMemoryBytes: (1024 - 256) * 1024 ** 2, tasksPidsMax: 4096 - 512,
  });
  assert.equal(limitsFor(16, 65536).pidsMax, 16384);
  assert.equal(limitsFor(16, 65536).tasksPidsMax, 16384 - 2048);
});

test('registry forwards only accept loopback addresses', () => {
  assert.deepEqual(parseLoopback('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
  assert.deepEqual(parseLoopback('localhost:5055'), { host: '127.0.0.1', port: 5055 });
  assert.deepEqual(parseLoopback('[::1]:443'), { host: '::1', port: 443 });
  assert.throws(() => parseLoopback('10.0.0.1:5000'), /only a loopback registry/);
  assert.throws(() => parseLoopback('registry.example.com:5000'), /only a loopback registry/);
  assert.throws(() => parseLoopback('127.0.0.1'), /HOST:PORT/);
  assert.throws(() => parseLoopback('127.0.0.1:70000'), /HOST:PORT/);
});

test('addresses: lowest free first, never twice, reusable once released, owners recorded', () => {
  const dir = join(work, 'addresses');
  const pool = new AddressPool(dir, slotNetwork(7));
  const a = pool.allocate({ kind: 'instance', instanceId: 'i-00000001' });
  const b = pool.allocate({ kind: 'task', taskId: 't1', instanceId: 'i-00000001' });
  assert.equal(a, '10.207.0.2');
  assert.equal(b, '10.207.0.3');
  // A second pool on the same directory (another process after a crash) sees the reservations.
  const again = new AddressPool(dir, slotNetwork(7));
  assert.equal(again.allocate({ kind: 'instance', instanceId: 'i-00000002' }), '10.207.0.4');
  pool.release(a);
  assert.equal(again.allocate({ kind: 'instance', instanceId: 'i-00000003' }), '10.207.0.2');
  assert.deepEqual(pool.list().find((x) => x.address === b)?.owner, { kind: 'task', taskId: 't1', instanceId: 'i-00000001' });
  const many = new Set(Array.from({ length: 300 }, (_, i) => pool.allocate({ kind: 'instance', instanceId: `i-${i}` })));
  assert.equal(many.size, 300);
  assert.ok(many.has('10.207.1.1'), 'rolls over into the next /24, skipping .0 and .255');
  assert.ok(![...many].some((x) => /\.(0|255)$/.test(x)));
});

test('slot leases: one slot per data dir, stable across restarts, reclaimed when the data dir is gone', async () => {
  const leases = new SlotLeases(join(work, 'host'));
  const marker = (d: string) => join(d, 'slot.json');
  const reclaimed: number[] = [];
  const withInstances = new Set<string>();
  const acquire = (d: string) => leases.acquire(d, {
    markerFile: marker,
    hasState: (dir) => withInstances.has(dir),
    usable: async (n) => n !== 1, // pretend 10.201/16 is in use
    reclaim: async (n) => { reclaimed.push(n); },
  });
  const [da, db, dc, dd, de] = ['a', 'b', 'c', 'd', 'e'].map((n) => join(work, n));
  for (const d of [da, db, dc, dd, de]) mkdirSync(d!);
  const [sa, sb] = await Promise.all([acquire(da!), acquire(db!)]);
  assert.notEqual(sa, sb);
  assert.deepEqual([sa, sb].sort(), [0, 2], 'slot 1 is skipped: its subnet is in use');
  assert.equal(await acquire(da!), sa, 'the same data dir gets its slot back');
  rmSync(da!, { recursive: true });
  reclaimed.length = 0;
  const sc = await acquire(dc!);
  assert.ok(reclaimed.includes(sa), "the gone data dir's slot was wiped");
  assert.equal(sc, sa, 'and reused');
  await leases.release(db!, sb, marker(db!));
  assert.deepEqual(readdirSync(join(work, 'host', 'slots')).sort(), [`slot-${sc}.json`]);

  // A data dir whose server is gone keeps its slot only while it has instances.
  const dead = spawnSync('true').pid!;
  const orphan = async (d: string) => {
    const slot = await acquire(d);
    writeFileSync(marker(d), JSON.stringify({ ...JSON.parse(readFileSync(marker(d), 'utf8')), holders: [{ pid: dead, start: '1' }] }));
    return slot;
  };
  const sd = await orphan(dd!);
  withInstances.add(dd!);
  const se = await orphan(de!);
  reclaimed.length = 0;
  mkdirSync(join(work, 'a2'));
  await acquire(join(work, 'a2'));
  assert.ok(!reclaimed.includes(sd), 'kept: it still has instances');
  assert.ok(reclaimed.includes(se), 'reclaimed: no server, no instances');
  assert.equal(await acquire(dd!), sd, 'a restarted server finds its slot');
});
