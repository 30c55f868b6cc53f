// Whether SQL Server holds credentials at all: read without loading the driver (mssql and
// tedious take ~100 ms to load), so a run without a connection string never loads them.
/** Where the connection string came from, for messages. */
export type MssqlOrigin = 'STORAGE_SYNC_MSSQL' | 'credentials.mssql in the config';

export interface MssqlTarget {
  connectionString: string;
  origin: MssqlOrigin;
}

/** Environment first, then the config (as for the bucket credentials themselves). */
export function mssqlTarget(env: NodeJS.ProcessEnv, configured: string | undefined): MssqlTarget | undefined {
  const fromEnv = env['STORAGE_SYNC_MSSQL'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { connectionString: fromEnv, origin: 'STORAGE_SYNC_MSSQL' };
  if (configured !== undefined && configured.trim() !== '') return { connectionString: configured, origin: 'credentials.mssql in the config' };
  return undefined;
}

