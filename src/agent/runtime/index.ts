// The instance agent's container runtime: the public surface (everything else is internal).
export { ContainerRuntime, OOM_REASON, LOST_REASON } from './containers.js';
export type { ContainerRuntimeOptions, ContainerState, CreateOptions, RuntimeStatus } from './containers.js';
export { ImageStore } from './images.js';
export type { ImageStoreOptions, PulledImage } from './images.js';
export type { ImageConfig } from './image-config.js';
export { buildOciSpec } from './oci-spec.js';
export type { SpecInput } from './oci-spec.js';
export { convertSeccompProfile, SeccompProfiles } from './seccomp.js';
export { measureHostFacts, selinuxEnabled } from './host-facts.js';
export type { HostFacts } from './host-facts.js';
export { readLog, rotateLog, parseK8sLog, START } from './logs.js';
export type { LogCursor, LogEvent, LogRead } from './logs.js';
export { taskUsage } from './stats.js';
export type { TaskUsage } from './stats.js';
export { runtimeId } from './container-id.js';
export * from './errors.js';
export type { TerminalProcess } from './terminal.js';
