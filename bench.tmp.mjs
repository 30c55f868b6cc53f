import sql from 'mssql';
import { startTdsServer } from '/work/wt/tds/dist/test/support/tds/server.js';
const s = await startTdsServer();
for (let k = 0; k < 3; k++) {
  const t = performance.now();
  const pool = await new sql.ConnectionPool(s.connectionString).connect();
  console.log('connect+login', (performance.now() - t).toFixed(1), 'ms');
  const N = 1000;
  let t2 = performance.now();
  for (let i = 0; i < N; i++) await pool.request().query('SELECT 1 AS ok');
  console.log('query (2 round trips: validation + query)', ((performance.now() - t2) / N).toFixed(3), 'ms');
  const p2 = await new sql.ConnectionPool({ ...sql.ConnectionPool.parseConnectionString(s.connectionString), validateConnection: false }).connect();
  t2 = performance.now();
  for (let i = 0; i < N; i++) await p2.request().query('SELECT 1 AS ok');
  console.log('query (no validation)', ((performance.now() - t2) / N).toFixed(3), 'ms');
  await p2.close();
  await pool.close();
}
await s.close();
