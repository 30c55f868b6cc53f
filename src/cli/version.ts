// Alone in its module: bin.ts answers `--version` from here without loading the parser.
export const VERSION = '0.1.0';
