import { CredentialsError } from '../core/errors.js';
import { OPTIONAL_KEYS, REQUIRED_KEYS, type CredentialKey, type CredentialSource, type Credentials } from './source.js';

/** Per key, the first source that has it wins; anything still missing is one line, exit 2. */
export async function resolveCredentials(profile: string, sources: CredentialSource[]): Promise<Credentials> {
  const found: Partial<Record<CredentialKey, string>> = {};
  const keys: CredentialKey[] = [...REQUIRED_KEYS, ...OPTIONAL_KEYS];
  for (const source of sources) {
    const wanted = keys.filter((k) => found[k] === undefined);
    // A source is asked only while a required key is missing: with all four in the environment
    // a run does not depend on (or wait for) SQL Server, even for an optional key.
    if (!REQUIRED_KEYS.some((k) => wanted.includes(k))) break;
    const got = await source.lookup(profile, wanted);
    for (const k of wanted) if (got[k] !== undefined) found[k] = got[k];
  }
  const missing = REQUIRED_KEYS.filter((k) => found[k] === undefined);
  if (missing.length > 0) {
    throw new CredentialsError(
      `missing credentials for profile "${profile}": ${missing.join(', ')} (looked in: ${sources.map((s) => s.name).join(', ')})`,
    );
  }
  const endpoint = found.AWS_S3_ENDPOINT_URL!;
  if (!/^https?:\/\/[^\s/]+/i.test(endpoint)) {
    throw new CredentialsError(`AWS_S3_ENDPOINT_URL must be an http(s) URL, got "${endpoint}"`);
  }
  return {
    accessKeyId: found.AWS_ACCESS_KEY_ID!,
    secretAccessKey: found.AWS_SECRET_ACCESS_KEY!,
    endpoint,
    bucket: found.AWS_STORAGE_BUCKET_NAME!,
    region: found.AWS_S3_REGION_NAME ?? 'auto',
    forcePathStyle: /^(1|true|yes)$/i.test(found.AWS_S3_FORCE_PATH_STYLE ?? ''),
  };
}
