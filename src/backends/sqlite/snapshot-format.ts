import { createHash } from 'node:crypto';
import { InvalidSnapshotError } from '../../core/errors.js';

/**
 * The muster snapshot file: a 32-byte header, the SQLite database image, and a
 * 32-byte trailer holding the SHA-256 of everything before it.
 *
 * Header: magic "MUSTSNAP" (8 bytes), format version (uint32 BE), reserved
 * (uint32, 0), revision (uint64 BE), database length in bytes (uint64 BE).
 */
export const SNAPSHOT_MAGIC = 'MUSTSNAP';
export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 32;
export const SNAPSHOT_TRAILER_BYTES = 32;

export function encodeSnapshotHeader(revision: number, length: number): Buffer {
  const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  header.write(SNAPSHOT_MAGIC, 0, 'latin1');
  header.writeUInt32BE(SNAPSHOT_FORMAT_VERSION, 8);
  header.writeBigUInt64BE(BigInt(revision), 16);
  header.writeBigUInt64BE(BigInt(length), 24);
  return header;
}

/** The whole file for a database image at `revision`. */
export function snapshotParts(revision: number, database: Uint8Array): Buffer[] {
  const header = encodeSnapshotHeader(revision, database.byteLength);
  const digest = createHash('sha256').update(header).update(database).digest();
  return [header, Buffer.from(database.buffer, database.byteOffset, database.byteLength), digest];
}

/** Check a whole snapshot file; return its revision and database image, or throw InvalidSnapshotError. */
export function decodeSnapshot(file: Buffer): { revision: number; database: Buffer } {
  if (file.length < SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES) {
    throw new InvalidSnapshotError(
      `the snapshot is truncated: ${file.length} bytes, shorter than a header and trailer`,
    );
  }
  if (file.toString('latin1', 0, 8) !== SNAPSHOT_MAGIC) {
    throw new InvalidSnapshotError('not a muster snapshot (bad magic bytes)');
  }
  const version = file.readUInt32BE(8);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new InvalidSnapshotError(
      `unknown snapshot format version ${version} (this muster reads ${SNAPSHOT_FORMAT_VERSION})`,
    );
  }
  const revision = Number(file.readBigUInt64BE(16));
  const length = Number(file.readBigUInt64BE(24));
  const expected = SNAPSHOT_HEADER_BYTES + length + SNAPSHOT_TRAILER_BYTES;
  if (file.length !== expected) {
    throw new InvalidSnapshotError(
      `the snapshot is ${file.length < expected ? 'truncated' : 'too long'}: ${file.length} bytes, the header says ${expected}`,
    );
  }
  const body = file.subarray(0, SNAPSHOT_HEADER_BYTES + length);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(file.subarray(SNAPSHOT_HEADER_BYTES + length))) {
    throw new InvalidSnapshotError('the snapshot is corrupt: its SHA-256 checksum does not match');
  }
  return { revision, database: file.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + length) };
}
