// ECS Exec on the agent: commands the control plane's session broker opens in running
// containers, each on a pseudo-terminal, relayed over the agent's own outbound connection.
// The agent checks again what the broker checked (a task of this instance, started with
// enableExecuteCommand, the container running) and caps how many commands run at once.
// Nothing here gives a shell on the instance itself: every command runs inside a container
// through `runc exec`, with the container's namespaces, user, capabilities and seccomp.
import type { ContainerDriver } from './driver.js';
import type { ExecAgentMessage, ExecControlMessage } from './protocol.js';
import type { TerminalProcess } from './runtime/index.js';

export const MAX_AGENT_EXEC_SESSIONS = 64;

export interface AgentExecOptions {
  driver: ContainerDriver;
  send(msg: ExecAgentMessage): boolean;
  /** Why `runtimeId` of `taskArn` may not be exec'd into now, or undefined when it may. */
  refuse(taskArn: string, runtimeId: string): string | undefined;
  log(line: string): void;
}

interface Running { runtimeId: string; term?: TerminalProcess; closed: boolean; pending: Buffer[]; size?: { cols: number; rows: number }; paused?: boolean }

export class AgentExec {
  private readonly sessions = new Map<string, Running>();

  constructor(private readonly o: AgentExecOptions) {}

  handle(msg: ExecControlMessage): void {
    switch (msg.type) {
      case 'exec-open': void this.open(msg); break;
      case 'exec-input': {
        const s = this.sessions.get(msg.sessionId);
        const data = Buffer.from(msg.data, 'base64');
        if (s?.term) s.term.write(data); else s?.pending.push(data);
        break;
      }
      case 'exec-resize': {
        const s = this.sessions.get(msg.sessionId);
        if (s?.term) s.term.resize(msg.cols, msg.rows); else if (s) s.size = { cols: msg.cols, rows: msg.rows };
        break;
      }
      case 'exec-flow': {
        const s = this.sessions.get(msg.sessionId);
        if (!s) break;
        s.paused = msg.pause;
        if (msg.pause) s.term?.pause(); else s.term?.resume();
        break;
      }
      case 'exec-close': this.close(msg.sessionId); break;
    }
  }

  /** Ends every command (the control plane connection is gone: nobody can see their output). */
  closeAll(): void {
    for (const id of [...this.sessions.keys()]) this.close(id);
  }

  /** Ends the commands running in a container (e.g. it is being removed). */
  closeContainer(runtimeId: string): void {
    for (const [id, s] of this.sessions) if (s.runtimeId === runtimeId) this.close(id);
  }

  get count(): number { return this.sessions.size; }

  private close(sessionId: string): void {
    const s = this.sessions.get(sessionId);
    if (!s || s.closed) return;
    s.closed = true;
    s.term?.kill();
  }

  private async open(msg: Extract<ExecControlMessage, { type: 'exec-open' }>): Promise<void> {
    if (this.sessions.has(msg.sessionId)) return;
    const refused = this.sessions.size >= MAX_AGENT_EXEC_SESSIONS
      ? `this instance already runs ${MAX_AGENT_EXEC_SESSIONS} exec sessions`
      : msg.argv.length === 0 ? 'empty command' : this.o.refuse(msg.taskArn, msg.runtimeId);
    if (refused) {
      this.o.send({ type: 'exec-exit', sessionId: msg.sessionId, exitCode: 126, error: refused });
      return;
    }
    const s: Running = { runtimeId: msg.runtimeId, closed: false, pending: [] };
    this.sessions.set(msg.sessionId, s);
    let term: TerminalProcess;
    try {
      term = await this.o.driver.openTerminal(msg.runtimeId, msg.argv, { cols: msg.cols, rows: msg.rows });
    } catch (e) {
      this.sessions.delete(msg.sessionId);
      this.o.log(`agent: exec ${msg.sessionId} in ${msg.runtimeId} failed to start: ${(e as Error).message}`);
      this.o.send({ type: 'exec-exit', sessionId: msg.sessionId, exitCode: 126, error: `the command could not be started: ${(e as Error).message}` });
      return;
    }
    s.term = term;
    term.onData((data) => { this.o.send({ type: 'exec-output', sessionId: msg.sessionId, data: data.toString('base64') }); });
    term.onExit((exitCode) => {
      this.sessions.delete(msg.sessionId);
      this.o.send({ type: 'exec-exit', sessionId: msg.sessionId, exitCode });
    });
    if (s.size) term.resize(s.size.cols, s.size.rows);
    for (const d of s.pending.splice(0)) term.write(d);
    if (s.paused) term.pause();
    if (s.closed) term.kill();
  }
}
