// Model-based end-to-end tests: the random cases (see world.ts for the operations, the model and
// the invariants checked after every sync).
import { test } from 'node:test';
import fc from 'fast-check';
import { useServerAndProjects } from '../support/fixture.js';
import { check, RUNS } from './config.js';
import { finalSyncs, opArb, runOps, stats, useServer } from './world.js';

useServerAndProjects(useServer);

test('model: random user operations on one or two clients and the bucket, and syncs in every mode, agree with the reference model', async () => {
  const scenario = fc
    .integer({ min: 1, max: 2 })
    .chain((clients) => fc.tuple(fc.constant(clients), fc.boolean(), fc.array(opArb, { minLength: 3, maxLength: 20, size: 'medium' }), finalSyncs(clients)));
  await check(
    'sync model',
    fc.asyncProperty(scenario, async ([clients, multipart, ops, last]) => {
      await runOps([...ops, ...last], clients, multipart);
    }),
    RUNS ?? 60,
  );
  process.stdout.write(`# model coverage: ${JSON.stringify(stats)}\n`);
});
