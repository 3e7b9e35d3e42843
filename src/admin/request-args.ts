import { AdminError } from './admin-server.js';

/**
 * Reading request arguments (query or body): a malformed one is the caller's mistake, answered 400 with
 * the argument's name and the expected form — never the value, which could be anything the caller typed.
 */

/** An ISO 8601 time (the CLI turns `2h`, `3d` into one before sending). */
export function timeArg(value: string | null | undefined, name: string): Date | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new AdminError(400, 'BAD_REQUEST', `${name}: expected an ISO 8601 time`);
  return new Date(t);
}

/** A whole number in [min, max]; `fallback` when absent. */
export function intArg(
  value: string | null | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value?.trim();
  if (!v) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    throw new AdminError(400, 'BAD_REQUEST', `${name}: a whole number from ${min} to ${max}`);
  }
  return n;
}
