// Addresses inside a slot's 10.S.0.0/16, allocated crash-safely: each address is a file
// created with O_EXCL in the Berth's provider directory *before* anything uses it, naming
// its owner. Two launches can never get the same address, and after a crash an address file
// whose owner has no record is simply freed by `recover`. Host interface names and MAC
// addresses derive from the address, so they are unique on the host as well.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SlotNetwork } from './host-lease.js';

/** An instance's own address, its pull namespace's (the agent's image pulls), or an awsvpc task's. */
export type AddressOwner = { kind: 'instance'; instanceId: string } | { kind: 'pull'; instanceId: string } | { kind: 'task'; taskId: string; instanceId: string };

export class AddressPool {
  constructor(private readonly dir: string, private readonly net: SlotNetwork) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Every allocated address with its owner. */
  list(): { address: string; owner: AddressOwner | undefined }[] {
    return readdirSync(this.dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).map((address) => {
      let owner: AddressOwner | undefined;
      try { owner = JSON.parse(readFileSync(join(this.dir, address), 'utf8')) as AddressOwner; } catch { owner = undefined; }
      return { address, owner };
    });
  }

  /** The lowest free address (10.S.0.2 … 10.S.255.254, skipping .0 and .255), reserved for `owner`. */
  allocate(owner: AddressOwner): string {
    const used = new Set(readdirSync(this.dir));
    for (let c = 0; c <= 255; c++) {
      for (let d = c === 0 ? 2 : 1; d <= 254; d++) {
        const address = `10.${this.net.octet}.${c}.${d}`;
        if (used.has(address)) continue;
        try {
          writeFileSync(join(this.dir, address), JSON.stringify(owner) + '\n', { flag: 'wx', mode: 0o600 });
          return address;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
    }
    throw new Error(`no free address left in ${this.net.subnet}`);
  }

  release(address: string): void {
    rmSync(join(this.dir, address), { force: true });
  }
}

function octets(address: string): number[] {
  return address.split('.').map(Number);
}

/** Host-side veth name for an address: `bv<slot>-<c>-<d>` (at most 12 characters; the kernel allows 15). */
export function hostVethName(net: SlotNetwork, address: string): string {
  const [, , c, d] = octets(address);
  return `bv${net.slot}-${c}-${d}`;
}

/** The address a host veth name stands for, when it belongs to this slot. */
export function addressOfHostVeth(net: SlotNetwork, name: string): string | undefined {
  const m = new RegExp(`^bv${net.slot}-(\\d+)-(\\d+)$`).exec(name);
  return m ? `10.${net.octet}.${m[1]}.${m[2]}` : undefined;
}

/** Locally administered MAC derived from the IPv4 address: 02:b7:0a:SS:CC:DD. */
export function macForAddress(address: string): string {
  return ['02', 'b7', ...octets(address).map((o) => o.toString(16).padStart(2, '0'))].join(':');
}

export function inSubnet(net: SlotNetwork, address: string): boolean {
  const [a, b] = octets(address);
  return a === 10 && b === net.octet;
}
