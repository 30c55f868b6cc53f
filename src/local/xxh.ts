// One xxhash-wasm instance per thread: instantiating the wasm module costs a few ms, and both the
// hash workers and the downloader (main thread) hash many files.

import xxhash from 'xxhash-wasm';

export interface Xxh64Stream {
  update(b: Uint8Array): void;
  /** Lower-case hex, zero-padded to 16 characters. */
  digestHex(): string;
}

export interface Xxh64 {
  create(): Xxh64Stream;
  hex(b: Uint8Array): string;
}

let instance: Promise<Xxh64> | undefined;

const toHex = (v: bigint): string => v.toString(16).padStart(16, '0');

export function getXxh64(): Promise<Xxh64> {
  instance ??= xxhash().then(({ create64, h64Raw }) => ({
    create() {
      const state = create64();
      return {
        update: (b) => void state.update(b),
        digestHex: () => toHex(state.digest()),
      };
    },
    hex: (b) => toHex(h64Raw(b)),
  }));
  return instance;
}
