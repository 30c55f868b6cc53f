// lmdb-js does not survive a damaged data file: opening an empty, zeroed, truncated or foreign
// file kills the process (SIGSEGV or SIGBUS, measured with lmdb 3.5.6) instead of throwing. This
// reads the two meta pages the way LMDB does and says what is wrong before anything maps the file.
import fs from 'node:fs';

const MAGIC = 0xbeefc0de;
const DATA_VERSION = 2;
const P_META = 0x08;
// This LMDB build's page header: pgno (8), txnid (8), pad (2), flags (2), lower/upper (4).
const PAGE_HEADER = 24;
const META = PAGE_HEADER;
// Inside the meta: magic, version, address, mapsize, then two MDB_db records of 48 bytes.
const DBS = META + 24;
const DB_SIZE = 48;
const DB_ROOT = 40;
const LAST_PG = DBS + 2 * DB_SIZE;
const TXNID = LAST_PG + 8;
const P_INVALID = 0xffffffffffffffffn;

/**
 * Why `file` cannot be an LMDB data file this build reads, or undefined when it looks sound. An
 * empty file is not damage (a process killed while creating the environment leaves one): LMDB
 * initialises it when opened for writing, and it reads as an empty base.
 */
export function lmdbFileProblem(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    return headerProblem(fd);
  } catch (err) {
    return `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function headerProblem(fd: number): string | undefined {
  const size = fs.fstatSync(fd).size;
  if (size === 0) return undefined;
  const first = Buffer.alloc(512);
  if (fs.readSync(fd, first, 0, first.length, 0) < first.length) return `is too short (${size} bytes) to be an LMDB file`;
  if (!isMeta(first)) return 'is not an LMDB data file (no valid meta page)';
  const psize = first.readUInt32LE(DBS);
  if (psize < 512 || psize > 65536 || (psize & (psize - 1)) !== 0) return `has an impossible page size ${psize}`;
  if (size < 2 * psize) return `is truncated (${size} bytes, page size ${psize})`;
  const second = Buffer.alloc(512);
  fs.readSync(fd, second, 0, second.length, psize);
  // LMDB uses the meta page with the newest transaction; its roots must lie inside the file.
  const meta = isMeta(second) && second.readBigUInt64LE(TXNID) > first.readBigUInt64LE(TXNID) ? second : first;
  const pages = BigInt(Math.floor(size / psize));
  for (const db of [0, 1]) {
    const root = meta.readBigUInt64LE(DBS + db * DB_SIZE + DB_ROOT);
    if (root !== P_INVALID && root >= pages) return `is truncated (its tree starts at page ${root}, the file has ${pages} pages)`;
  }
  return undefined;
}

function isMeta(page: Buffer): boolean {
  return (
    (page.readUInt16LE(18) & P_META) !== 0 &&
    page.readUInt32LE(META) === MAGIC &&
    (page.readUInt32LE(META + 4) & 0xffff) === DATA_VERSION
  );
}
