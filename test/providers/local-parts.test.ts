// The local provider's pure parts and file-based allocators (no root needed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AddressPool, addressOfHostVeth, hostVethName, macForAddress } from '../../src/providers/local/addresses.js';
import { limitsFor } from '../../src/providers/local/cgroups.js';
import { firewallScript } from '../../src/providers/local/firewall.js';
import { parseLoopback, reachesOwnSocket, relayDecision } from '../../src/providers/local/forwarder.js';
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

test('the registry relay passes pulls of the registry API only', () => {
  for (const url of ['/v2/', '/v2', '/v2/busybox/manifests/latest', '/v2/library/busybox/manifests/sha256:' + 'a'.repeat(64),
    '/v2/a/b/blobs/sha256:' + 'b'.repeat(64), '/v2/x/tags/list?n=10', '/v2/_catalog']) {
    assert.deepEqual(relayDecision('GET', url), { relay: true }, url);
  }
  assert.deepEqual(relayDecision('HEAD', '/v2/busybox/manifests/1.0'), { relay: true });
  for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', undefined]) assert.equal((relayDecision(m, '/v2/x/blobs/uploads/') as { status: number }).status, 405, String(m));
  for (const url of ['/', '/metrics', '/agent', '/v2/x/blobs/uploads/abc', '/v2/../metrics', '/v2/X/manifests/latest', '/v1/_ping', 'http://evil/v2/']) {
    assert.equal((relayDecision('GET', url) as { status: number }).status, 404, url);
  }
  const target = { host: '127.0.0.1', port: 4480 };
  assert.equal(reachesOwnSocket(target, [{ address: '127.0.0.1', port: 4480 }]), true, "Berth's API");
  assert.equal(reachesOwnSocket(target, [{ address: '0.0.0.0', port: 4480 }]), true);
  assert.equal(reachesOwnSocket(target, [{ address: '::', port: 4480 }]), true);
  assert.equal(reachesOwnSocket(target, [{ address: '10.203.0.1', port: 4480 }]), false, 'a relay on the gateway address with the same port');
  assert.equal(reachesOwnSocket(target, [{ address: '127.0.0.1', port: 5000 }]), false);
});

test('the slot firewall: one table per family and slot, rules only for this slot\'s ports', () => {
  const net = slotNetwork(3);
  const script = firewallScript(net, {
    ports: [
      { ifname: 'bv3-0-2', mac: '02:b7:0a:cb:00:02', address: '10.203.0.2', role: 'instance' },
      { ifname: 'bv3-0-3', mac: '02:b7:0a:cb:00:03', address: '10.203.0.3', role: 'pull' },
      { ifname: 'bv3-0-4', mac: '02:b7:0a:cb:00:04', address: '10.203.0.4', role: 'task' },
      { ifname: 'bv4-0-2', mac: '02:b7:0a:cc:00:02', address: '10.204.0.2', role: 'task' },
    ],
    agentPorts: [40001], relayPorts: [5000],
  });
  assert.deepEqual(script.match(/^table \S+ \S+ \{$/gm), ['table bridge berth3 {', 'table inet berth3 {']);
  assert.doesNotMatch(script, /bv4-|10\.204\./, "another slot's port never appears");
  assert.match(script, /set peers \{[^}]*elements = \{ "bv3-0-2" \. 02:b7:0a:cb:00:02 \. 10\.203\.0\.2, "bv3-0-4" [^}]*\}; \}/, 'pull ports are no peers');
  assert.match(script, /set instances \{ type ipv4_addr; elements = \{ 10\.203\.0\.2 \}; \}/);
  assert.match(script, /set pullers \{ type ipv4_addr; elements = \{ 10\.203\.0\.3 \}; \}/);
  assert.match(script, /ip daddr 10\.203\.0\.1 ip saddr @instances tcp dport @agent_ports accept/);
  assert.match(script, /iifname != "bv3-\*" accept/);
  if (process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v nft']).status === 0) {
    const check = spawnSync('nft', ['-c', '-f', '-'], { input: script, encoding: 'utf8' });
    assert.equal(check.status, 0, `nft -c rejects the script: ${check.stderr}`);
  }
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
