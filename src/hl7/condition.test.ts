import { describe, expect, it } from 'vitest';
import { isEngineError } from '../errors.js';
import {
  CONDITION_SCHEMA,
  type ConditionReader,
  type ConditionSpec,
  compileCondition,
  conditionSchema,
  isConditionError,
  messageReader,
} from './condition.js';
import { parse } from './index.js';

const MSG = parse(
  [
    'MSH|^~\\&|LAB|HOSP|HL7E|HOSP|20240315103000||ORU^R01^ORU_R01|MSG0001|T|2.5.1',
    'PID|1||111^^^HOSP^MR~222^^^SSA^SS||Doe^Jane||19800101|F',
    'OBR|1|PL1|FL1|24331-1^Lipid panel^LN',
    'OBX|1|NM|2093-3^Cholesterol^LN||182|mg/dL',
    'OBX|2|NM|2571-8^Triglyceride^LN||96|mg/dL',
    'OBX|3|ST|8251-1^Note^LN||fasting \\T\\ rested',
    'NTE|1||',
  ].join('\r'),
);

const holds = (spec: ConditionSpec, reader: ConditionReader = messageReader(MSG)) =>
  compileCondition(spec)(reader);

function compileError(spec: unknown) {
  try {
    compileCondition(spec as ConditionSpec);
  } catch (err) {
    if (isConditionError(err)) return err;
    throw err;
  }
  throw new Error('compiled');
}

describe('compileCondition leaves', () => {
  it('equals compares the decoded value exactly', () => {
    expect(holds({ path: 'MSH-11-1', equals: 'T' })).toBe(true);
    expect(holds({ path: 'MSH-11-1', equals: 't' })).toBe(false);
    expect(holds({ path: 'PID-8', equals: 'F' })).toBe(true);
    // Escapes are decoded before comparing: \T\ is "&".
    expect(holds({ path: 'OBX[3]-5', equals: 'fasting & rested' })).toBe(true);
  });

  it('in holds when a value is one of the list', () => {
    expect(holds({ path: 'PID-8', in: ['M', 'F', 'U'] })).toBe(true);
    expect(holds({ path: 'PID-8', in: ['M', 'U'] })).toBe(false);
  });

  it('matches tests a regular expression, unanchored unless written so', () => {
    expect(holds({ path: 'MSH-10', matches: '^MSG\\d+$' })).toBe(true);
    expect(holds({ path: 'MSH-10', matches: '\\d{4}' })).toBe(true);
    expect(holds({ path: 'MSH-10', matches: '^\\d+$' })).toBe(false);
  });

  it('exists looks for a non-empty value', () => {
    expect(holds({ path: 'PID-7', exists: true })).toBe(true);
    expect(holds({ path: 'PID-9', exists: true })).toBe(false);
    expect(holds({ path: 'PID-9', exists: false })).toBe(true);
    // A present segment with an empty field, and an absent segment, both count as absent.
    expect(holds({ path: 'NTE-3', exists: false })).toBe(true);
    expect(holds({ path: 'ZZZ-1', exists: false })).toBe(true);
    expect(holds({ path: 'ZZZ-1', matches: '.*' })).toBe(false);
    expect(holds({ path: 'NTE-3', matches: '.*' })).toBe(false);
  });
});

describe('repetitions and occurrences', () => {
  it('holds when any repetition of a field matches', () => {
    expect(holds({ path: 'PID-3-5', equals: 'SS' })).toBe(true);
    expect(holds({ path: 'PID-3(1)-5', equals: 'SS' })).toBe(false);
    expect(holds({ path: 'PID-3(2)-5', equals: 'SS' })).toBe(true);
  });

  it('holds when any occurrence of a segment matches', () => {
    expect(holds({ path: 'OBX-3-1', equals: '2571-8' })).toBe(true);
    expect(holds({ path: 'OBX[1]-3-1', equals: '2571-8' })).toBe(false);
    expect(holds({ path: 'OBX-2', in: ['ST', 'TX'] })).toBe(true);
  });

  it('not over a repeated path means that no value matches', () => {
    expect(holds({ not: { path: 'OBX-2', equals: 'NM' } })).toBe(false);
    expect(holds({ not: { path: 'OBX-2', equals: 'CWE' } })).toBe(true);
  });
});

describe('combinators', () => {
  it('all, any and not nest', () => {
    const spec: ConditionSpec = {
      all: [
        { path: 'MSH-9-1', equals: 'ORU' },
        {
          any: [
            { path: 'PID-8', equals: 'M' },
            { all: [{ path: 'PID-8', equals: 'F' }, { not: { path: 'PID-7', exists: false } }] },
          ],
        },
      ],
    };
    expect(holds(spec)).toBe(true);
    expect(holds({ all: [spec, { path: 'MSH-9-2', equals: 'R03' }] })).toBe(false);
    expect(
      holds({
        any: [
          { path: 'PID-8', equals: 'X' },
          { path: 'PID-8', equals: 'Y' },
        ],
      }),
    ).toBe(false);
    expect(holds({ any: [{ path: 'PID-8', equals: 'X' }] })).toBe(false);
    expect(holds({ not: { not: { path: 'PID-8', equals: 'F' } } })).toBe(true);
  });

  it('reads only what it needs (short-circuit)', () => {
    const asked: string[] = [];
    const reader: ConditionReader = {
      values: (p) => {
        asked.push(p);
        return p === 'PID-8' ? ['F'] : [];
      },
    };
    expect(
      holds(
        {
          any: [
            { path: 'pid.8', equals: 'F' },
            { path: 'PID-9', exists: true },
          ],
        },
        reader,
      ),
    ).toBe(true);
    // The reader gets the canonical path form, whatever notation the spec used.
    expect(asked).toEqual(['PID-8']);
  });
});

describe('component leaves (data-type maps)', () => {
  const reader: ConditionReader = {
    values: () => [],
    component: (n) => (n === 2 ? ['MR'] : []),
  };
  it('reads through the reader’s component()', () => {
    expect(holds({ component: 2, equals: 'MR' }, reader)).toBe(true);
    expect(holds({ component: 3, exists: false }, reader)).toBe(true);
  });
  it('reads no values from a reader without component()', () => {
    expect(holds({ component: 2, exists: true })).toBe(false);
  });
});

describe('compile errors', () => {
  it('rejects an invalid regular expression at compile time, without its text', () => {
    const err = compileError({
      any: [
        { path: 'PID-8', equals: 'F' },
        { path: 'PID-5', matches: '([a-z' },
      ],
    });
    expect(err.problem).toBe('regex');
    expect(err.at).toEqual(['any', '1', 'matches']);
    expect(isEngineError(err, 'CONFIG_INVALID')).toBe(true);
    expect(err.message).not.toContain('[a-z');
    expect(err.cause).toBeUndefined();
  });

  it('rejects invalid paths, shapes, unknown keys and wrong types with the key path', () => {
    expect(compileError({ path: 'PID-0-1', equals: 'x' })).toMatchObject({ problem: 'path', at: ['path'] });
    expect(compileError({ path: 'nope', equals: 'x' })).toMatchObject({ problem: 'path' });
    expect(compileError({ path: 'PID-8' })).toMatchObject({ problem: 'shape', at: [] });
    expect(compileError({ path: 'PID-8', equals: 'F', exists: true })).toMatchObject({ problem: 'shape' });
    expect(compileError({ all: [], any: [] })).toMatchObject({ problem: 'shape' });
    expect(compileError({ all: [] })).toMatchObject({ problem: 'shape', at: ['all'] });
    expect(compileError({ not: { path: 'PID-8', equal: 'F' } })).toMatchObject({
      problem: 'unknown-key',
      at: ['not', 'equal'],
    });
    expect(compileError({ path: 'PID-8', equals: 1 })).toMatchObject({ problem: 'type', at: ['equals'] });
    expect(compileError({ path: 'PID-8', in: ['F', 2] })).toMatchObject({ problem: 'type', at: ['in', '1'] });
    expect(compileError({ path: 'PID-8', exists: 'yes' })).toMatchObject({ problem: 'type' });
    expect(compileError({ component: 0, exists: true })).toMatchObject({
      problem: 'type',
      at: ['component'],
    });
    expect(compileError({ all: { path: 'PID-8', exists: true } })).toMatchObject({ problem: 'type' });
    expect(compileError(null)).toMatchObject({ problem: 'type', at: [] });
  });
});

describe('CONDITION_SCHEMA', () => {
  it('refers to itself where the host schema puts it', () => {
    expect(JSON.stringify(CONDITION_SCHEMA)).toContain('"#/$defs/condition"');
    expect(JSON.stringify(conditionSchema('#/definitions/when'))).not.toContain('$defs');
  });

  it('allows component leaves only when asked', () => {
    const props = (s: object) => Object.keys((s as { properties: object }).properties);
    expect(props(CONDITION_SCHEMA)).not.toContain('component');
    expect(props(conditionSchema('#/definitions/condition', { component: true }))).toContain('component');
  });
});
