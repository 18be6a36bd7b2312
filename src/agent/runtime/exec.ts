// Running the runtime's helper binaries (runc, skopeo, umoci, mount...) with their output
// captured, so a failure carries the tool's own words.
import { execFile } from 'node:child_process';

export class CommandError extends Error {
  constructor(readonly command: string, readonly code: number | string | null, readonly stdout: string, readonly stderr: string) {
    super(`${command} failed (${code}): ${stderr.trim() || stdout.trim()}`);
  }
}

export interface RunResult { stdout: string; stderr: string }

export function run(bin: string, args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; encoding?: 'utf8' } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: opts.timeoutMs ?? 120_000, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
        reject(new CommandError(`${bin} ${args.slice(0, 6).join(' ')}`, code, stdout, stderr));
      } else resolve({ stdout, stderr });
    });
  });
}
