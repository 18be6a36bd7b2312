// The runc CLI, always with `--root` in the instance's data dir (never the host's /run/runc).
import { CommandError, run } from './exec.js';

export interface RuncState { id: string; status: 'creating' | 'created' | 'running' | 'paused' | 'stopped'; pid: number; bundle: string }

export class Runc {
  constructor(readonly bin: string, readonly root: string) {}

  private exec(args: string[]) {
    return run(this.bin, ['--root', this.root, ...args], { timeoutMs: 60_000 });
  }

  /** undefined when runc does not know the container. */
  async state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse((await this.exec(['state', id])).stdout) as RuncState;
    } catch (e) {
      if (e instanceof CommandError && /does not exist|not exist/.test(e.stderr)) return undefined;
      throw e;
    }
  }

  async start(id: string): Promise<void> {
    await this.exec(['start', id]);
  }

  /** Signals the container's init (or every process with `all`); false when it is not running. */
  async kill(id: string, signal: string, all = false): Promise<boolean> {
    try {
      await this.exec(['kill', ...(all ? ['--all'] : []), id, signal]);
      return true;
    } catch (e) {
      if (e instanceof CommandError && /not running|does not exist|process already finished|container not running/i.test(e.stderr)) return false;
      throw e;
    }
  }

  /** Deletes the container's runc state and leaf cgroups; `force` kills it first if running. */
  async delete(id: string, force = false): Promise<void> {
    try {
      await this.exec(['delete', ...(force ? ['--force'] : []), id]);
    } catch (e) {
      if (e instanceof CommandError && /does not exist/.test(e.stderr)) return;
      throw e;
    }
  }
}
