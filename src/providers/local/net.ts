// Host networking with iproute2: the slot's bridge, and network namespaces joined to it by
// a veth pair (host end `bv<slot>-<c>-<d>` on the bridge, `eth0` inside). Ports are locked
// down before they come up (securePort); what they may send is firewall.ts's business.
import { writeFileSync } from 'node:fs';
import { run } from './exec.js';
import { macForAddress } from './addresses.js';
import type { SlotNetwork } from './host-lease.js';

interface IpLink { ifname: string; address?: string; link_type?: string; master?: string; linkinfo?: { info_kind?: string } }
interface IpAddr { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }
interface IpRoute { dst: string; dev?: string }

const ip = (args: string[], opts: { input?: string; allowFail?: boolean } = {}) => run('ip', args, opts);

export async function listLinks(): Promise<IpLink[]> {
  const r = await ip(['-j', '-d', 'link', 'show']);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as IpLink[]) : [];
}

export async function listNetns(): Promise<string[]> {
  const r = await ip(['-j', 'netns', 'list'], { allowFail: true });
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
}

export async function linkExists(name: string): Promise<boolean> {
  return (await ip(['link', 'show', 'dev', name], { allowFail: true })).code === 0;
}

export async function deleteLink(name: string): Promise<void> {
  await ip(['link', 'del', 'dev', name], { allowFail: true });
}

export async function deleteNetns(name: string): Promise<void> {
  await ip(['netns', 'del', name], { allowFail: true });
}

/** IPv4 addresses of eth0 inside a netns (empty when there is none). */
export async function netnsAddresses(netns: string): Promise<string[]> {
  const r = await ip(['-n', netns, '-j', '-4', 'addr', 'show'], { allowFail: true });
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as IpAddr[]).filter((a) => a.ifname === 'eth0').flatMap((a) => (a.addr_info ?? []).map((i) => i.local));
}

export async function ipv4Routes(): Promise<IpRoute[]> {
  const r = await ip(['-j', '-4', 'route', 'show', 'table', 'all'], { allowFail: true });
  return r.stdout.trim() ? (JSON.parse(r.stdout) as IpRoute[]) : [];
}

function cidrRange(cidr: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?$/.exec(cidr);
  if (!m) return undefined;
  const base = ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]);
  const len = m[5] === undefined ? 32 : Number(m[5]);
  const size = 2 ** (32 - len);
  const start = Math.floor(base / size) * size;
  return [start, start + size - 1];
}

/** Whether a host route (other than the slot's own bridge) overlaps the slot's subnet. */
export async function subnetInUse(net: SlotNetwork): Promise<string | undefined> {
  const mine = cidrRange(net.subnet)!;
  for (const r of await ipv4Routes()) {
    if (r.dst === 'default' || r.dev === net.bridge) continue;
    const range = cidrRange(r.dst);
    if (range && range[0] <= mine[1] && mine[0] <= range[1]) return `${r.dst} dev ${r.dev ?? '?'}`;
  }
  return undefined;
}

/** Creates (or repairs) the slot's bridge with the gateway address and a fixed MAC. */
export async function ensureBridge(net: SlotNetwork): Promise<void> {
  if (!(await linkExists(net.bridge))) {
    // A fixed MAC: otherwise a bridge takes the lowest MAC of its ports, and the gateway's
    // MAC would change under the instances' ARP caches as instances come and go.
    const r = await ip(['link', 'add', net.bridge, 'address', macForAddress(net.gateway), 'type', 'bridge'], { allowFail: true });
    if (r.code !== 0 && !(await linkExists(net.bridge))) throw new Error(`cannot create bridge ${net.bridge}: ${r.stderr.trim()}`);
  }
  const addrs = await ip(['-j', '-4', 'addr', 'show', 'dev', net.bridge]);
  const have = (JSON.parse(addrs.stdout || '[]') as IpAddr[]).flatMap((a) => (a.addr_info ?? []).map((i) => `${i.local}/${i.prefixlen}`));
  if (!have.includes(`${net.gateway}/${net.prefixLength}`)) {
    await ip(['addr', 'add', `${net.gateway}/${net.prefixLength}`, 'dev', net.bridge], { allowFail: true });
  }
  // IPv4 only: without this, instances could reach host services listening on [::] through
  // the bridge's link-local address.
  try { writeFileSync(`/proc/sys/net/ipv6/conf/${net.bridge}/disable_ipv6`, '1'); } catch { /* no IPv6 in this kernel */ }
  await ip(['link', 'set', net.bridge, 'up']);
}

/**
 * `ip netns add <netns>`, a veth pair whose `eth0` end moves into it with `address/16`,
 * `lo` up, and (unless `defaultRoute` is false) a default route via the gateway. The host
 * end joins the bridge as a locked-down port (securePort) before it comes up.
 */
export async function plugNetns(net: SlotNetwork, netns: string, hostVeth: string, address: string, opts: { defaultRoute?: boolean } = {}): Promise<void> {
  await ip(['-batch', '-'], {
    input: [
      `netns add ${netns}`,
      `link add ${hostVeth} type veth peer name eth0 address ${macForAddress(address)} netns ${netns}`,
      `link set ${hostVeth} master ${net.bridge}`,
    ].join('\n') + '\n',
  });
  await securePort(net, hostVeth, address);
  await ip(['link', 'set', hostVeth, 'up']);
  await ip(['-n', netns, '-batch', '-'], {
    input: [
      'link set lo up',
      `addr add ${address}/${net.prefixLength} dev eth0`,
      'link set eth0 up',
      ...(opts.defaultRoute === false ? [] : [`route add default via ${net.gateway} dev eth0`]),
    ].join('\n') + '\n',
  });
}

/**
 * A bridge port that learns nothing and gets no flooded unicast or multicast: the bridge
 * delivers to it only frames for its own MAC (a static entry) and broadcasts, so no port can
 * take over another's MAC or see its traffic. Idempotent.
 */
export async function securePort(net: SlotNetwork, hostVeth: string, address: string): Promise<void> {
  // No IPv6 on the host end either: link-local frames the bridge passes up on the port
  // itself would otherwise reach the host's [::] services over its fe80:: address.
  try { writeFileSync(`/proc/sys/net/ipv6/conf/${hostVeth}/disable_ipv6`, '1'); } catch { /* no IPv6 in this kernel */ }
  await ip(['link', 'set', 'dev', hostVeth, 'type', 'bridge_slave', 'learning', 'off', 'flood', 'off', 'mcast_flood', 'off']);
  await run('bridge', ['fdb', 'replace', macForAddress(address), 'dev', hostVeth, 'master', 'static']);
}

/** Removes a namespace made by plugNetns and its veth (deleting either veth end deletes both). */
export async function unplugNetns(netns: string, hostVeth: string): Promise<void> {
  await deleteLink(hostVeth);
  await deleteNetns(netns);
}
