import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONDITION_SCHEMA } from '../hl7/condition.js';
import schema from './channel.schema.json' with { type: 'json' };
import {
  type ChannelProblem,
  formatProblem,
  type LoadChannelOptions,
  loadChannelDir,
} from './channel-loader.js';

const root = mkdtempSync(join(tmpdir(), 'hl7e-channels-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BASE = `name: test-channel
source:
  mllp:
    port: 0
`;

let n = 0;
/** Loads one channel file (BASE + extra lines) from a folder of its own. */
function load(extra: string, options?: LoadChannelOptions) {
  const dir = join(root, `c${++n}`);
  mkdirSync(dir);
  const file = join(dir, 'channel.yaml');
  writeFileSync(file, BASE + extra);
  return { ...loadChannelDir(dir, options), file };
}

/** `line key: message` of each problem, the file checked once. */
function problems(extra: string, options?: LoadChannelOptions): string[] {
  const r = load(extra, options);
  return r.problems.map((p: ChannelProblem) => {
    expect(p.file).toBe(r.file);
    return `${p.line} ${p.key}: ${p.message}`;
  });
}

describe('shipped channels', () => {
  it('are all valid', () => {
    const dir = new URL('../../channels/', import.meta.url).pathname;
    const r = loadChannelDir(dir);
    expect(r.problems.map(formatProblem)).toEqual([]);
    expect(r.channels.map((c) => c.name).sort()).toEqual(['adt-inbound', 'lab-results', 'orders']);
    expect(r.channels.find((c) => c.name === 'lab-results')?.validate).toBe(true);
    expect(r.channels.find((c) => c.name === 'adt-inbound')?.filter).toBeDefined();
  });
});

describe('schema', () => {
  it('embeds the condition schema of src/hl7/condition.ts unchanged', () => {
    expect(schema.$defs.condition).toEqual(CONDITION_SCHEMA);
  });

  it('describes every top-level key for editors', () => {
    for (const key of ['filter', 'mapping', 'validate', 'timezone']) {
      expect((schema.properties as Record<string, { description?: string }>)[key]?.description).toBeTruthy();
    }
  });
});

describe('defaults', () => {
  it('fills validate and timezone, leaves filter and mapping absent', () => {
    const [c] = load('').channels;
    expect(c).toMatchObject({ validate: false, timezone: 'UTC' });
    expect(c?.filter).toBeUndefined();
    expect(c?.mapping).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });
});

describe('timezone', () => {
  it.each(['UTC', 'America/Chicago', 'Europe/Berlin', '-05:00', '+14:00', '+05:30'])('accepts %s', (tz) => {
    expect(load(`timezone: '${tz}'\n`).channels[0]?.timezone).toBe(tz);
  });

  it.each(['Mars/Olympus', 'CDT-ish', '+5', '+25:00', '05:00'])('rejects %s at its line', (tz) => {
    expect(problems(`description: x\ntimezone: '${tz}'\n`)).toEqual(['6 timezone: unknown time zone']);
  });

  it('rejects a non-string', () => {
    expect(problems('timezone: 5\n')).toEqual(['5 timezone: must be string']);
  });
});

describe('validate', () => {
  it('accepts true and false', () => {
    expect(load('validate: true\n').channels[0]?.validate).toBe(true);
    expect(load('validate: false\n').channels[0]?.validate).toBe(false);
  });
  it('rejects a non-boolean', () => {
    expect(problems('validate: on please\n')).toEqual(['5 validate: must be boolean']);
  });
});

describe('FHIR destination auth and headers', () => {
  const dest = (auth: string) =>
    `destinations:\n  - name: ehr\n    fhir:\n      baseUrl: https://ehr.example.org/fhir\n      headers: { X-Site: mercy }\n${auth}`;
  it('accepts each auth type with its secrets read from env or file', () => {
    const oauth = load(
      dest(
        '      auth:\n        type: oauth2-client-credentials\n        tokenUrl: https://ehr.example.org/token\n' +
          '        clientId: hl7e\n        clientSecret: { env: EHR_SECRET }\n        scopes: [system/*.write]\n',
      ),
    );
    expect(oauth.problems).toEqual([]);
    expect(oauth.channels[0]?.destinations[0]?.fhir).toMatchObject({
      headers: { 'X-Site': 'mercy' },
      auth: { type: 'oauth2-client-credentials', clientSecret: { env: 'EHR_SECRET' } },
    });
    expect(
      load(dest('      auth: { type: basic, username: u, password: { file: /run/secrets/p } }\n')).problems,
    ).toEqual([]);
    expect(load(dest('      auth: { type: none }\n')).problems).toEqual([]);
  });
  it('refuses a secret written into the channel file, and names what a type lacks', () => {
    expect(problems(dest('      auth:\n        type: bearer\n        token: plain-text\n'))).toEqual([
      '12 destinations.0.fhir.auth.token: must be object',
    ]);
    expect(problems(dest('      auth:\n        type: basic\n        username: u\n'))).toEqual([
      '10 destinations.0.fhir.auth.password: required key is missing',
    ]);
  });
  it('accepts SMART backend services with a key from a file, and names what it lacks', () => {
    const smart = (extra: string) =>
      dest(
        '      auth:\n        type: smart-backend-services\n        tokenUrl: https://ehr.example.org/token\n' +
          `        clientId: hl7e\n${extra}        scopes: [system/*.write]\n`,
      );
    const ok = load(smart('        privateKey: { file: /run/secrets/hl7e.pem }\n        keyId: k1\n'));
    expect(ok.problems).toEqual([]);
    expect(ok.channels[0]?.destinations[0]?.fhir?.auth).toEqual({
      type: 'smart-backend-services',
      tokenUrl: 'https://ehr.example.org/token',
      clientId: 'hl7e',
      privateKey: { file: '/run/secrets/hl7e.pem' },
      keyId: 'k1',
      scopes: ['system/*.write'],
    });
    expect(problems(smart('        privateKey: { env: KEY }\n        algorithm: HS256\n'))).toEqual([
      '10 destinations.0.fhir.auth.keyId: required key is missing',
      '15 destinations.0.fhir.auth.algorithm: must be one of: RS384, ES384',
    ]);
  });
});

describe('mapping', () => {
  it('accepts a mapping name', () => {
    expect(load('mapping: lab-results-ORU\n').channels[0]?.mapping).toBe('lab-results-ORU');
    expect(load('mapping: ORU_R01.v2\n').channels[0]?.mapping).toBe('ORU_R01.v2');
  });

  it('rejects a name outside the pattern', () => {
    expect(problems('mapping: ../etc/passwd\n')).toEqual([
      '5 mapping: must match pattern "^[A-Za-z0-9][A-Za-z0-9_.-]*$"',
    ]);
  });

  it('reports what checkMapping returns at the mapping line, or line 1 when absent', () => {
    const calls: Array<[string | undefined, readonly string[] | undefined]> = [];
    const checkMapping = (name: string | undefined, accept: readonly string[] | undefined) => {
      calls.push([name, accept]);
      return name === 'known' ? [] : ['mapping not found', 'second problem'];
    };
    expect(problems('accept: [ORU^R01]\nmapping: unknown\n', { checkMapping })).toEqual([
      '6 mapping: mapping not found',
      '6 mapping: second problem',
    ]);
    expect(problems('', { checkMapping })).toEqual([
      '1 mapping: mapping not found',
      '1 mapping: second problem',
    ]);
    expect(load('mapping: known\n', { checkMapping }).channels).toHaveLength(1);
    expect(calls).toEqual([
      ['unknown', ['ORU^R01']],
      [undefined, undefined],
      ['known', undefined],
    ]);
  });
});

describe('filter', () => {
  it('accepts leaves and combinators', () => {
    const r = load(`filter:
  all:
    - not: { path: MSH-11-1, equals: T }
    - any:
        - { path: MSH-9-2, in: [A01, A04, A08] }
        - { path: PID-3-5, matches: '^(MR|PI)$' }
    - { path: PID-3, exists: true }
`);
    expect(r.problems).toEqual([]);
    const filter = r.channels[0]?.filter as { all: unknown[] };
    expect(filter.all).toHaveLength(3);
    expect(filter.all[0]).toEqual({ not: { path: 'MSH-11-1', equals: 'T' } });
  });

  it('reports an invalid regex at the matches line', () => {
    expect(
      problems(`filter:
  any:
    - { path: PID-8, equals: F }
    - path: PID-5
      matches: '([a-z'
`),
    ).toEqual(['9 filter.any.1.matches: invalid regular expression']);
  });

  it('reports an invalid path at the path line', () => {
    expect(problems('filter:\n  not:\n    path: PID-X\n    exists: true\n')).toEqual([
      '7 filter.not.path: invalid field path',
    ]);
  });

  it('reports unknown keys inside a condition', () => {
    expect(problems('filter:\n  path: PID-8\n  equal: F\n')).toEqual(['7 filter.equal: unknown key']);
    expect(problems('filter:\n  all:\n    - { path: PID-8, equals: F, regex: x }\n')).toEqual([
      '7 filter.all.0.regex: unknown key',
    ]);
  });

  it('reports a condition of no single form once, at its line', () => {
    const shape = 'a condition is one of: path with equals, in, matches or exists; all; any; not';
    expect(problems('filter:\n  path: PID-8\n')).toEqual([`5 filter: ${shape}`]);
    expect(problems('filter:\n  any:\n    - { path: PID-8, equals: F, exists: true }\n')).toEqual([
      `7 filter.any.0: ${shape}`,
    ]);
    expect(
      problems('filter:\n  all: [{ path: PID-8, equals: F }]\n  not: { path: PID-8, exists: true }\n'),
    ).toEqual([`5 filter: ${shape}`]);
  });

  it('reports wrong value types', () => {
    expect(problems('filter: { path: PID-8, equals: 1 }\n')).toEqual(['5 filter.equals: must be string']);
    expect(problems('filter: { path: PID-8, exists: maybe }\n')).toEqual([
      '5 filter.exists: must be boolean',
    ]);
    expect(problems('filter: { any: [] }\n')).toEqual(['5 filter.any: must NOT have fewer than 1 items']);
  });

  it('does not take component leaves (data-type maps only)', () => {
    expect(problems('filter: { component: 1, exists: true }\n')).toEqual(['5 filter.component: unknown key']);
  });
});

describe('unknown keys', () => {
  it('are reported with their line', () => {
    expect(problems('timezones: UTC\nvalidate: true\nfilters: {}\n')).toEqual([
      '5 timezones: unknown key',
      '7 filters: unknown key',
    ]);
  });
});

describe('secrets written inline', () => {
  it('are warned about at their line and key, the value never repeated', () => {
    const r = load(`destinations:
  - name: ehr
    fhir:
      baseUrl: https://svc:hunter2@ehr.example.org/fhir
      headers:
        Authorization: Bearer abc.def.ghi
        X-Request-Source: hl7e
  - name: other
    fhir:
      baseUrl: https://ehr.example.org/fhir?api_key=k-123
      auth:
        type: oauth2-client-credentials
        tokenUrl: https://ehr.example.org/token
        clientId: engine
        clientSecret: { env: EHR_SECRET }
`);
    expect(r.problems).toEqual([]);
    expect(r.channels).toHaveLength(1);
    const lines = r.warnings.map((w) => `${w.line} ${w.key}: ${w.message}`);
    expect(lines).toEqual([
      '10 destinations.0.fhir.headers.Authorization: secret written inline: header Authorization belongs in auth ({ env } or { file })',
      '8 destinations.0.fhir.baseUrl: secret written inline: a password in the URL (use auth: basic with password: { env })',
      '14 destinations.1.fhir.baseUrl: secret written inline: query parameter api_key in the URL (use auth or a header from { env })',
    ]);
    for (const w of r.warnings) expect(w.message).not.toMatch(/hunter2|abc\.def|k-123/);
  });

  it('are not found in a channel that references its secrets', () => {
    const r = load(`destinations:
  - name: ehr
    fhir:
      baseUrl: https://ehr.example.org/fhir
      auth: { type: bearer, token: { file: /run/secrets/ehr-token } }
`);
    expect(r.warnings).toEqual([]);
  });
});
