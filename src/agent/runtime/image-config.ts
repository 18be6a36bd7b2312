// The part of an OCI image config (application/vnd.oci.image.config.v1+json, same fields in
// Docker's v2 config) that decides how a container runs.

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env: string[];
  workingDir?: string;
  user?: string;
  /** Signal `stop` sends first (Docker's StopSignal); SIGTERM when absent. */
  stopSignal?: string;
  labels: Record<string, string>;
}

interface RawConfig {
  config?: {
    Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string;
    User?: string; StopSignal?: string; Labels?: Record<string, string> | null;
  };
}

export function parseImageConfig(json: string): ImageConfig {
  const raw = JSON.parse(json) as RawConfig;
  const c = raw.config ?? {};
  const out: ImageConfig = { env: c.Env ?? [], labels: c.Labels ?? {} };
  if (c.Entrypoint?.length) out.entrypoint = c.Entrypoint;
  if (c.Cmd?.length) out.cmd = c.Cmd;
  if (c.WorkingDir) out.workingDir = c.WorkingDir;
  if (c.User) out.user = c.User;
  if (c.StopSignal) out.stopSignal = c.StopSignal;
  return out;
}
