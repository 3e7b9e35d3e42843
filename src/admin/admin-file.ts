import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a running daemon's admin API is, and the token it takes: `<HL7E_DATA_DIR>/admin.json`, mode 0600. */
export interface AdminAddress {
  readonly url: string;
  readonly token: string;
  readonly pid: number;
  readonly startedAt: string;
}

export const ADMIN_FILE = 'admin.json';

export function newAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Written whole (temp file + rename) so a CLI never reads half of it. */
export function writeAdminFile(dataDir: string, address: AdminAddress): void {
  const file = join(dataDir, ADMIN_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(address)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export function readAdminFile(dataDir: string): AdminAddress | undefined {
  try {
    const v = JSON.parse(readFileSync(join(dataDir, ADMIN_FILE), 'utf8')) as AdminAddress;
    return typeof v.url === 'string' && typeof v.token === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the file if it is still this process's (a newer daemon may have replaced it). */
export function removeAdminFile(dataDir: string, token: string): void {
  if (readAdminFile(dataDir)?.token === token) rmSync(join(dataDir, ADMIN_FILE), { force: true });
}
