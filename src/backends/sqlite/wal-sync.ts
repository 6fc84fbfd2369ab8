import { closeSync, fdatasync, fsyncSync, openSync } from 'node:fs';

/**
 * Makes the file store's WAL durable: an fdatasync on libuv's thread pool while
 * the event loop goes on (the group commit's `sync` hook).
 */
export class WalSync {
  private fd: number | null = null;

  constructor(
    private readonly walPath: string,
    private readonly dataDir: string,
  ) {}

  /** fdatasync the WAL; the event loop goes on meanwhile. */
  sync(): Promise<void> {
    const path = this.walPath;
    try {
      // SQLite keeps one WAL file (the same inode, truncated and rewritten) while
      // the store's connection is open: only the last connection to close deletes
      // it, and a snapshot's read-only connection never is the last. So one
      // descriptor serves every sync.
      if (this.fd === null) {
        this.fd = openSync(path, 'r+');
        // The WAL's directory entry must be durable too, once.
        const dir = openSync(this.dataDir, 'r');
        try {
          fsyncSync(dir);
        } finally {
          closeSync(dir);
        }
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const fd = this.fd;
    return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }

  /** Closes the descriptor (the next sync would open it again). */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
