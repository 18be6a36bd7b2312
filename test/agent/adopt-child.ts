// Child process for the adoption test: plays an agent that creates (and maybe starts) a
// container, says so, and then waits to be SIGKILLed.
import { ContainerRuntime } from '../../src/agent/runtime/containers.js';
import { ImageStore } from '../../src/agent/runtime/images.js';

// `node --test dist/test/` also runs every .js under a test/ dir: without arguments, do nothing.
if (!process.argv[2]) process.exit(0);
const args = JSON.parse(process.argv[2]) as { dataDir: string; cgroupRoot: string; task: never; container: never; digest: string; start: boolean };
const images = new ImageStore({ dataDir: args.dataDir });
const image = images.get(args.digest);
if (!image) throw new Error('image not unpacked');
const rt = new ContainerRuntime({ dataDir: args.dataDir, cgroupRoot: args.cgroupRoot });
const c = await rt.create(args.task, args.container, image);
if (args.start) await rt.start(c.id);
process.stdout.write(`READY ${c.id}\n`);
setInterval(() => undefined, 1 << 30);
