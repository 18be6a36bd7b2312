// A command on a pseudo-terminal (ECS Exec). runc 1.1 accepts --console-socket only with
// --detach (and a detached exec loses the exit code), so the command runs as a NON-detached
// `runc exec --tty`: runc allocates the container's pty itself and proxies it to its own
// terminal, which node-pty provides. runc forwards resizes (SIGWINCH) and its exit status is
// the command's; Ctrl-C is just the byte 0x03 reaching the container pty's line discipline.
// No socket is involved. `--pid-file` names the exec'd process so teardown can kill it
// (runc forwards catchable signals, but a SIGKILL would only kill runc).
import { readFileSync, rmSync } from 'node:fs';

export interface TerminalProcess {
  onData(listener: (data: Buffer) => void): void;
  /** The command's exit code (128 + signal when runc itself was killed). */
  onExit(listener: (exitCode: number) => void): void;
  write(data: Buffer): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
  /** Ends the command: SIGKILL to the exec'd process (its session then gets SIGHUP), then to runc. */
  kill(): void;
}

type Pty = typeof import('node-pty');
let ptyModule: Promise<Pty> | undefined;

/** node-pty is a native module: loaded on the first exec only. */
function loadPty(): Promise<Pty> {
  ptyModule ??= import('node-pty').then((m) => ((m as unknown as { default?: Pty }).default ?? m));
  return ptyModule;
}

export async function spawnTerminal(bin: string, args: string[], o: { cols: number; rows: number; pidFile: string; env?: NodeJS.ProcessEnv }): Promise<TerminalProcess> {
  const pty = await loadPty();
  const p = pty.spawn(bin, args, {
    name: 'xterm', cols: clamp(o.cols), rows: clamp(o.rows), encoding: null,
    env: o.env ?? { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;
  p.onExit(() => {
    exited = true;
    if (killTimer) clearTimeout(killTimer);
    rmSync(o.pidFile, { force: true });
  });
  return {
    onData: (listener) => { p.onData((d) => listener(typeof d === 'string' ? Buffer.from(d) : d as unknown as Buffer)); },
    onExit: (listener) => { p.onExit(({ exitCode, signal }) => listener(signal ? 128 + signal : exitCode)); },
    write: (data) => { if (!exited) p.write(data); },
    resize: (cols, rows) => { if (!exited) p.resize(clamp(cols), clamp(rows)); },
    pause: () => { if (!exited) p.pause(); },
    resume: () => { if (!exited) p.resume(); },
    kill: () => {
      if (exited) return;
      let pid: number | undefined;
      try { pid = Number(readFileSync(o.pidFile, 'utf8').trim()) || undefined; } catch { /* not started yet */ }
      if (pid) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        // runc exits once its process is gone; make sure of it.
        killTimer = setTimeout(() => { try { p.kill('SIGKILL'); } catch { /* gone */ } }, 2_000);
        killTimer.unref?.();
      } else {
        try { p.kill('SIGKILL'); } catch { /* gone */ }
      }
    },
  };
}

function clamp(n: number): number {
  return Math.max(1, Math.min(1000, Math.trunc(n) || 1));
}
