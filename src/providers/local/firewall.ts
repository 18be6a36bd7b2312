// The slot's packet filter, like a VPC's: nftables tables `bridge berth<slot>` and
// `inet berth<slot>`, rewritten whole (in one atomic `nft -f` transaction) from the provider's
// records whenever a port comes or goes. Another Berth's slot has its own tables, and every
// rule matches only this slot's ports (`bv<slot>-*`) or bridge.
//
// bridge (L2, per port): a port sends only from its own MAC and IPv4 address (ARP sender MAC
//   and IP too), IPv4 and ARP only; between ports a frame goes only to the port that owns its
//   destination MAC and IP (an ARP request only to the port whose address it asks for), so no
//   port sees another's traffic; pull ports (the agent's image pulls) talk to the gateway only.
// inet (the host): from the bridge, only new connections from instance addresses to the agent
//   gateway's port, from pull addresses to the registry relay's ports, and replies; nothing is
//   routed between the bridge and other host interfaces.
import { run } from './exec.js';
import type { SlotNetwork } from './host-lease.js';

export type PortRole = 'instance' | 'task' | 'pull';

export interface BridgePort {
  /** Host end of the veth (`bv<slot>-<c>-<d>`). */
  ifname: string;
  mac: string;
  address: string;
  role: PortRole;
}

export interface FirewallState {
  ports: BridgePort[];
  /** The agent gateway's TCP port(s) on the gateway address. */
  agentPorts: number[];
  /** The registry relay's TCP ports on the gateway address. */
  relayPorts: number[];
}

export const tableName = (net: SlotNetwork) => `berth${net.slot}`;
const portPattern = (net: SlotNetwork) => `"bv${net.slot}-*"`;

function set(name: string, type: string, elements: string[]): string {
  return `  set ${name} { type ${type};${elements.length ? ` elements = { ${elements.join(', ')} };` : ''} }`;
}

const unique = (xs: string[]) => [...new Set(xs)];

/** The `nft -f` script that replaces both tables of the slot with rules for `state`. Pure. */
export function firewallScript(net: SlotNetwork, state: FirewallState): string {
  const t = tableName(net);
  const ports = state.ports.filter((p) => p.ifname.startsWith(`bv${net.slot}-`));
  const peers = ports.filter((p) => p.role !== 'pull');
  const triple = (p: BridgePort) => `"${p.ifname}" . ${p.mac} . ${p.address}`;
  const pair = (p: BridgePort) => `"${p.ifname}" . ${p.address}`;
  const any = portPattern(net);
  const arp = 'ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4';
  return [
    `table bridge ${t} {}`,
    `delete table bridge ${t}`,
    `table bridge ${t} {`,
    set('ports', 'ifname . ether_addr . ipv4_addr', ports.map(triple)),
    set('peers', 'ifname . ether_addr . ipv4_addr', peers.map(triple)),
    set('port_addrs', 'ifname . ipv4_addr', ports.map(pair)),
    set('peer_addrs', 'ifname . ipv4_addr', peers.map(pair)),
    '  chain prerouting {',
    '    type filter hook prerouting priority filter; policy accept;',
    `    iifname != ${any} accept`,
    '    ether type ip iifname . ether saddr . ip saddr @ports accept',
    `    ${arp} iifname . ether saddr . arp saddr ip @ports iifname . arp saddr ether . arp saddr ip @ports accept`,
    '    counter drop',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname != ${any} accept`,
    '    ether type ip iifname . ether saddr . ip saddr @peers oifname . ether daddr . ip daddr @peers accept',
    `    ${arp} iifname . ether saddr . arp saddr ip @peers oifname . arp daddr ip @peer_addrs accept`,
    '    counter drop',
    '  }',
    '  chain output {',
    '    type filter hook output priority filter; policy accept;',
    `    oifname != ${any} accept`,
    '    ether type ip oifname . ip daddr @port_addrs accept',
    `    ${arp} oifname . arp daddr ip @port_addrs accept`,
    '    counter drop',
    '  }',
    '}',
    `table inet ${t} {}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    set('instances', 'ipv4_addr', unique(ports.filter((p) => p.role === 'instance').map((p) => p.address))),
    set('pullers', 'ipv4_addr', unique(ports.filter((p) => p.role === 'pull').map((p) => p.address))),
    set('agent_ports', 'inet_service', unique(state.agentPorts.map(String))),
    set('relay_ports', 'inet_service', unique(state.relayPorts.map(String))),
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    // Link-local frames (01:80:c2:00:00:0X) skip the bridge's prerouting hook and come up on
    // the port itself: nothing from a port reaches the host but through the bridge.
    `    iifname ${any} counter drop`,
    // The gateway's ports are for the bridge (and the host itself), never for other interfaces.
    `    ip daddr ${net.gateway} iifname != { "${net.bridge}", "lo" } counter drop`,
    `    iifname != "${net.bridge}" accept`,
    '    ct state established,related accept',
    `    ip daddr ${net.gateway} ip saddr @instances tcp dport @agent_ports accept`,
    `    ip daddr ${net.gateway} ip saddr @pullers tcp dport @relay_ports accept`,
    // A refused connection fails at once (an agent retries at once after a restart of Berth).
    '    meta l4proto tcp counter reject with tcp reset',
    '    counter drop',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    // Bridged traffic (br_netfilter shows it here with the bridge as both ends) was judged above.
    `    iifname "${net.bridge}" oifname "${net.bridge}" accept`,
    `    iifname "${net.bridge}" counter drop`,
    `    oifname "${net.bridge}" counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Removes both tables of the slot (nothing when they do not exist). */
export function removalScript(net: SlotNetwork): string {
  const t = tableName(net);
  return [`table bridge ${t} {}`, `delete table bridge ${t}`, `table inet ${t} {}`, `delete table inet ${t}`, ''].join('\n');
}

export async function nft(script: string): Promise<void> {
  const r = await run('nft', ['-f', '-'], { input: script, allowFail: true });
  if (r.code !== 0) throw new Error(`nft failed: ${r.stderr.trim()}`);
}

/**
 * Applies the slot's rules from `state()`, read when the rewrite runs: rewrites are serialised
 * and a request made while one is queued joins it, so the last rewrite always sees the latest
 * records. No bridge, no rules: a late rewrite (a process still stopping while `berth down`
 * released the slot) never leaves tables behind for the slot's next holder.
 */
export class Firewall {
  private tail: Promise<void> = Promise.resolve();
  private queued?: Promise<void>;

  constructor(
    private readonly net: SlotNetwork,
    private readonly state: () => FirewallState,
    private readonly apply: (script: string) => Promise<void>,
    private readonly bridgeExists: () => Promise<boolean>,
  ) {}

  sync(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.tail.catch(() => undefined).then(async () => {
      this.queued = undefined;
      const script = firewallScript(this.net, this.state());
      if (await this.bridgeExists()) await this.apply(script);
    });
    this.queued = next;
    this.tail = next;
    return next;
  }

  /** Removes the slot's tables (after every pending rewrite). */
  remove(): Promise<void> {
    const next = this.tail.catch(() => undefined).then(() => this.apply(removalScript(this.net)));
    this.tail = next;
    return next;
  }
}
