// `npm run tds-server -- [--port N] [--password P] [--file db.sqlite]`: the SQL Server stand-in
// (TDS over SQLite, test/support/tds) in the foreground, for trying `storage-sync creds` without
// a SQL Server. Prints a working connection string on its first line. Loopback only, no TLS.
import { parseArgs } from 'node:util';
import { startTdsServer } from '../test/support/tds/server.js';

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      password: { type: 'string' },
      file: { type: 'string' },
      user: { type: 'string', default: 'sa' },
      database: { type: 'string', default: 'storage' },
    },
  }));
} catch (err) {
  process.stderr.write(`tds-server: ${(err as Error).message}\n`);
  process.exit(2);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`tds-server: --port must be 0-65535, got ${values.port}\n`);
  process.exit(2);
}
let server;
try {
  server = await startTdsServer({ port, password: values.password, file: values.file, user: values.user, database: values.database });
} catch (err) {
  process.stderr.write(`tds-server: ${(err as Error).message}\n`);
  process.exit(2);
}
const where = values.file ? `SQLite file ${values.file}` : 'SQLite in memory (gone when stopped)';
process.stdout.write(
  [
    server.connectionString,
    `# SQL Server stand-in (TDS 7.4, no TLS) on ${server.host}:${server.port}, ${where}; use it as STORAGE_SYNC_MSSQL='<line above>'. Ctrl+C to stop.`,
  ].join('\n') + '\n',
);
const stop = async (): Promise<void> => {
  await server.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
