// Preloaded into the Berth process by `bench:api --cpu-prof DIR` (NODE_OPTIONS=--import=...),
// because Node 20 refuses --cpu-prof in NODE_OPTIONS. Profiles `berth up` through the
// in-process inspector from SIGUSR2 (sent by the bench after set-up, so start-up is left
// out) and writes DIR/berth-<pid>.cpuprofile when the process exits.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir && process.argv.includes('up')) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: Number(process.env.BENCH_CPU_PROF_INTERVAL_US ?? 500) });
  let started = false;
  process.on('SIGUSR2', () => { if (!started) { started = true; session.post('Profiler.start'); } });
  process.on('exit', () => {
    if (!started) return;
    // The in-process session answers synchronously, so this completes before exit.
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(join(dir, `berth-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
