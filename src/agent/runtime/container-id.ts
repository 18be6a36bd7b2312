// Runtime ids are a pure function of (task id, container name), so an agent restarted after a
// crash finds its containers again from the task list alone, without a database. They stay
// short because conmon binds a unix socket at <socket dir>/<id>/attach (108-byte limit), and
// the hash suffix keeps two long names that share a prefix apart.
import { createHash } from 'node:crypto';

const RUNTIME_ID = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export function runtimeId(taskId: string, containerName: string): string {
  const task = taskId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12) || 'task';
  const name = containerName.toLowerCase().replace(/[^a-z0-9_-]/g, '-').slice(0, 20);
  const hash = createHash('sha256').update(`${taskId}\0${containerName}`).digest('hex').slice(0, 8);
  return `${task}-${name}-${hash}`;
}

export function isRuntimeId(id: string): boolean {
  return RUNTIME_ID.test(id);
}
