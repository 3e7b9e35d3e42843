import type { FileProblem as ChannelProblem } from '../config/yaml-file.js';

/** Header names that carry credentials (compared lower-case). */
const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-auth-token',
  'x-access-token',
]);
/** Query parameters that carry credentials. */
const SECRET_PARAMS = /^(access_?token|token|api_?key|key|secret|client_secret|password|pwd|sig|signature)$/i;

/**
 * Secrets written into a channel file instead of referenced (`{ env: … }` / `{ file: … }`): credential
 * headers, passwords in URLs, tokens in query strings. Warnings, not errors — the channel still runs —
 * but `hl7e channels validate` shows them and the daemon logs them (without the value) at start.
 */
export function inlineSecretWarnings(
  value: unknown,
  file: string,
  lineOf: (path: string[]) => number,
): ChannelProblem[] {
  const out: ChannelProblem[] = [];
  const warn = (path: string[], message: string) =>
    out.push({ file, line: lineOf(path), key: path.join('.'), message });
  const destinations = (value as { destinations?: unknown[] }).destinations ?? [];
  destinations.forEach((d, i) => {
    const fhir = (
      d as { fhir?: { baseUrl?: string; headers?: Record<string, string>; auth?: { tokenUrl?: string } } }
    ).fhir;
    if (!fhir) return;
    const base = ['destinations', String(i), 'fhir'];
    for (const name of Object.keys(fhir.headers ?? {})) {
      if (SECRET_HEADERS.has(name.toLowerCase())) {
        warn(
          [...base, 'headers', name],
          `secret written inline: header ${name} belongs in auth ({ env } or { file })`,
        );
      }
    }
    for (const [key, url] of [
      ['baseUrl', fhir.baseUrl],
      ['tokenUrl', fhir.auth?.tokenUrl],
    ] as const) {
      const problem = urlSecret(url);
      if (problem)
        warn(
          key === 'baseUrl' ? [...base, key] : [...base, 'auth', key],
          `secret written inline: ${problem}`,
        );
    }
  });
  return out;
}

function urlSecret(text: string | undefined): string | undefined {
  if (!text) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.password) return 'a password in the URL (use auth: basic with password: { env })';
  for (const name of url.searchParams.keys()) {
    if (SECRET_PARAMS.test(name))
      return `query parameter ${name} in the URL (use auth or a header from { env })`;
  }
  return undefined;
}
