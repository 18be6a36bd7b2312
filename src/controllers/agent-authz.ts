// What an agent's messages may touch: only its own instance's tasks. Task reports and
// metrics are matched to the instance in the task store (applyReport), exec output to the
// instance's sessions (the exec broker); log batches are checked here.
import type { LogEventBatch } from '../agent/protocol.js';
import type { ContainerInstanceRecord } from '../ecs/container-instances.js';
import type { Ecs } from '../ecs/index.js';
import type { Json } from '../ecs/task-definition-rules.js';
import { logDestination } from './task-spec.js';

/**
 * Whether a batch goes to the log group and stream of a container of a task placed on this
 * instance: what the control plane sent it in that container's spec (`log`). Every stream
 * name ends with the task id, which finds the task at once.
 */
export function logBatchAllowed(ecs: Ecs, scope: string, ci: ContainerInstanceRecord, batch: Partial<LogEventBatch> | undefined): boolean {
  if (!batch || typeof batch.group !== 'string' || typeof batch.stream !== 'string') return false;
  const taskId = batch.stream.slice(batch.stream.lastIndexOf('/') + 1);
  const task = taskId ? ecs.tasks.get(scope, taskId) : undefined;
  if (!task || task.containerInstanceId !== ci.id) return false;
  const td = ecs.taskDefinitions.get(scope, task.family, task.revision);
  if (!td) return false;
  return (td.body.containerDefinitions as Json[]).some((c) => {
    const d = logDestination(td, c, task.cluster, task.id);
    return d.group === batch.group && d.stream === batch.stream;
  });
}
