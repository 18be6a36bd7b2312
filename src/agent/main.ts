// Entry point of the instance agent, started inside an instance by the instance provider
// (and restarted by the instance's supervisor if it dies). It only dials out.
import { Agent } from './agent.js';
import { measureAttributes } from './attributes.js';
import { createRuncDriver } from './runc-driver.js';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) { process.stderr.write(`berth-agent: ${name} is not set\n`); process.exit(2); }
  return v;
};

const dataDir = env('BERTH_AGENT_DATA_DIR', process.env.HOME);
const identity = {
  instanceType: env('BERTH_AGENT_INSTANCE_TYPE'),
  availabilityZone: env('BERTH_AGENT_AVAILABILITY_ZONE'),
  subnetId: env('BERTH_AGENT_SUBNET_ID'),
  platformVersion: env('BERTH_AGENT_PLATFORM_VERSION', 'unknown'),
  privilegedCapabilities: env('BERTH_AGENT_PRIVILEGED_CAPABILITIES', '').split(/\s+/).filter(Boolean),
  hostAccess: env('BERTH_AGENT_HOST_ACCESS', '').split(/\s+/).filter(Boolean),
  fipsRequested: env('BERTH_AGENT_FIPS_REQUESTED', '0') === '1',
};
const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

const driver = await createRuncDriver({ dataDir, log, launchGrant: identity });
const agent = new Agent({
  instanceId: env('BERTH_AGENT_INSTANCE_ID'),
  controlPlaneUrl: env('BERTH_AGENT_CONTROL_PLANE'),
  gatewayCa: env('BERTH_AGENT_GATEWAY_CA'),
  dataDir,
  driver,
  attributes: () => measureAttributes(identity),
  resources: driver.resources(),
  version: '0.1.0',
  log,
});
await agent.start();
log(`berth-agent: instance ${env('BERTH_AGENT_INSTANCE_ID')} started`);
const stop = () => { void agent.stop().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
