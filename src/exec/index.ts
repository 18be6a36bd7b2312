// ECS Exec: the session broker (Session Manager data channel) and what it is made of.
export { ExecBroker, DEFAULT_EXEC_LIMITS, NOT_ENABLED_MESSAGE, DATA_CHANNEL_PATH, type ExecLimits, type AgentLink, type ExecBrokerOptions, type ExecSessionEvent } from './broker.js';
export { ExecAudit, EXEC_SESSION_KIND, type ExecSessionRecord, type EndReason } from './audit.js';
export { splitCommandLine, CommandLineError } from './command-line.js';
export * as codec from './codec.js';
