// The runc CLI, always with `--root` in the instance's data dir (never the host's /run/runc).
import { execFile } from 'node:child_process';
import { CommandError, run } from './exec.js';
import { spawnTerminal, type TerminalProcess } from './terminal.js';

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

  /**
   * Runs a process in a running container (no terminal), returning its exit code and output.
   * A timeout kills the exec'd process and counts as a failure (exit code -1).
   *
   * Always `--process`, a file the caller writes where no container can reach: without it runc
   * takes the process (capabilities, user, env) from the bundle's config.json.
   */
  execIn(id: string, processFile: string, timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    return new Promise((resolve) => {
      const child = execFile(this.bin, ['--root', this.root, 'exec', '--process', processFile, id], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          const output = (stdout + stderr).slice(-4096);
          if (!err) { resolve({ exitCode: 0, output }); return; }
          const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
          resolve({ exitCode: typeof e.code === 'number' && !e.killed ? e.code : -1, output });
        });
      child.stdin?.end();
    });
  }

  /**
   * Runs a process (`"terminal": true` in its file, which runc honours as `--tty`) in a running
   * container on a pseudo-terminal (ECS Exec; see terminal.ts).
   */
  execTerminal(id: string, processFile: string, o: { cols: number; rows: number; pidFile: string }): Promise<TerminalProcess> {
    return spawnTerminal(this.bin, ['--root', this.root, 'exec', '--process', processFile, '--pid-file', o.pidFile, id], o);
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
