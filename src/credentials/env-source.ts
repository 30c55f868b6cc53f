import type { CredentialKey, CredentialSource } from './source.js';

export class EnvSource implements CredentialSource {
  readonly name = 'environment';
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  async lookup(_profile: string, keys: readonly CredentialKey[]): Promise<Partial<Record<CredentialKey, string>>> {
    const out: Partial<Record<CredentialKey, string>> = {};
    for (const k of keys) {
      const v = this.env[k];
      if (v !== undefined && v !== '') out[k] = v;
    }
    return out;
  }
}
