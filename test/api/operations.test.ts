import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { getFips } from 'node:crypto';
import { ListClustersCommand } from '@aws-sdk/client-ecs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startTestBerth, repoRoot, type TestBerth } from '../helpers/berth.js';

let berth: TestBerth;
// /metrics answers the administrator only; the test scrapes with a configured bearer token.
const SCRAPE = 'operations-test-scrape-token';
before(async () => { berth = await startTestBerth({ BERTH_METRICS_TOKEN: SCRAPE }); });
after(async () => { await berth.cleanup(); });

test('healthz answers without authentication', async () => {
  const r = await fetch(`${berth.creds.endpoint}/healthz`);
  assert.equal(r.status, 200);
  const body = await r.json() as { status: string; fips: { mode: boolean; opensslFipsProviderActive: boolean } };
  assert.equal(body.status, 'ok');
  // FIPS is reported as it is on this host (no TLS listener here, so no FIPS mode).
  assert.equal(body.fips.mode, false);
  assert.equal(body.fips.opensslFipsProviderActive, getFips() === 1);
});

test('metrics count requests and latencies per action', async () => {
  await berth.ecs().send(new ListClustersCommand({}));
  await berth.ecs().send(new ListClustersCommand({}));
  const text = await (await fetch(`${berth.creds.endpoint}/metrics`, { headers: { authorization: `Bearer ${SCRAPE}` } })).text();
  const count = /berth_api_requests_total\{service="ecs",action="ListClusters",code="200"\} (\d+)/.exec(text);
  assert.ok(count && Number(count[1]) >= 2, text.slice(0, 500));
  assert.match(text, /berth_api_request_duration_seconds_bucket\{le="0.005",service="ecs",action="ListClusters"\}/);
});

test('berth env prints exports the aws CLI understands', () => {
  const r = spawnSync(join(repoRoot, 'bin', 'berth'), ['env'], { env: berth.env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const name of ['AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_DEFAULT_REGION']) {
    assert.match(r.stdout, new RegExp(`^export ${name}='[^']+'$`, 'm'));
  }
  const sh = spawnSync('bash', ['-c', `eval "$(cat)" && unset AWS_CA_BUNDLE && aws ecs list-clusters --output json`], { input: r.stdout, encoding: 'utf8' });
  assert.equal(sh.status, 0, sh.stderr);
  assert.deepEqual(JSON.parse(sh.stdout), { clusterArns: [] });
});

test('a second Berth on the same data directory refuses to start', () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'up'], { env: berth.env, encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /another Berth \(pid \d+\) is already using/);
});
