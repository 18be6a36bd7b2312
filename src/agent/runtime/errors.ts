// The runtime's typed errors. Each message is written for the person who has to act on it
// (the task definition's author or the instance's operator) and, where ECS has a wording for
// the failure, it starts with ECS's error name so the control plane can pass it on as the
// container's or task's stopped reason unchanged.

/** Base class: lets callers tell runtime failures from bugs with one `instanceof`. */
export class RuntimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A container would get a capability its capacity provider does not allow. */
export class PrivilegedCapabilityError extends RuntimeError {
  constructor(readonly container: string, readonly capabilities: string[], message: string) {
    super(message);
  }
}

/** A container would get host access (pidMode/ipcMode host, devices) its capacity provider does not allow. */
export class HostAccessError extends RuntimeError {
  constructor(readonly container: string, readonly access: string[], message: string) {
    super(message);
  }
}

/** The task or container definition asks for something the runtime cannot build (bad user, ulimit, mount...). */
export class ContainerSpecError extends RuntimeError {}

/** The image could not be pulled; `message` starts with `CannotPullContainerError:` as in ECS. */
export class CannotPullContainerError extends RuntimeError {
  constructor(detail: string, readonly kind: 'not-found' | 'unreachable' | 'unauthorized' | 'digest-mismatch' | 'invalid-reference' | 'other') {
    super(`CannotPullContainerError: ${detail}`);
  }
}

/** `runc create` (through conmon) failed; `message` starts with `CannotStartContainerError:` as in ECS. */
export class CannotStartContainerError extends RuntimeError {
  constructor(detail: string) {
    super(`CannotStartContainerError: ${detail}`);
  }
}

/** The container id is already in use (create is not idempotent: look at `list()` first). */
export class ContainerExistsError extends RuntimeError {}

/** No such container in this runtime's data dir. */
export class NoSuchContainerError extends RuntimeError {}
