// Credentials are looked up per key, source by source, in order (environment first, then the
// SQL Server store once it exists). A source only reports values; it never decides what is missing.

/** The original variable names, kept from the site's settings. */
export const REQUIRED_KEYS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_S3_ENDPOINT_URL',
  'AWS_STORAGE_BUCKET_NAME',
] as const;
export const OPTIONAL_KEYS = ['AWS_S3_FORCE_PATH_STYLE', 'AWS_S3_REGION_NAME'] as const;

export type CredentialKey = (typeof REQUIRED_KEYS)[number] | (typeof OPTIONAL_KEYS)[number];

export interface CredentialSource {
  /** Where it looked, for the error message: "environment", "SQL Server dbo.storage_credentials". */
  readonly name: string;
  lookup(profile: string, keys: readonly CredentialKey[]): Promise<Partial<Record<CredentialKey, string>>>;
  close?(): Promise<void>;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  endpoint: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
}

/** Values that must never reach any output. */
export function secretsOf(c: Credentials): string[] {
  return [c.secretAccessKey];
}
