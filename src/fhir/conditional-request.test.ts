import { describe, expect, it } from 'vitest';
import {
  conditionalCreateEntry,
  conditionalQuery,
  conditionalUpdateEntry,
  conditionalUrl,
  escapeSearchValue,
  identifierToken,
  transactionEntry,
} from './conditional-request.js';

describe('escapeSearchValue', () => {
  it('escapes \\ | $ and , with a backslash (R4 search §escaping)', () => {
    expect(escapeSearchValue('a|b,c$d\\e')).toBe('a\\|b\\,c\\$d\\\\e');
    expect(escapeSearchValue('plain-123')).toBe('plain-123');
  });
});

describe('identifierToken', () => {
  it('is system|value', () => {
    expect(identifierToken({ system: 'http://hosp', value: '123' })).toBe('http://hosp|123');
  });
  it('escapes separators inside system and value but not the one between them', () => {
    expect(identifierToken({ system: 'urn:x', value: '12|3,4' })).toBe('urn:x|12\\|3\\,4');
  });
  it('is the value alone without a system', () => {
    expect(identifierToken({ value: '123' })).toBe('123');
    expect(identifierToken({ system: '', value: '123' })).toBe('123');
  });
  it('is undefined without a value (system| would match the whole system)', () => {
    expect(identifierToken({ system: 'http://hosp' })).toBeUndefined();
    expect(identifierToken({ system: 'http://hosp', value: '' })).toBeUndefined();
  });
});

describe('conditionalUrl', () => {
  it('percent-encodes token values', () => {
    const token = identifierToken({ system: 'http://hosp', value: '123' })!;
    expect(conditionalUrl('Patient', [['identifier', token]])).toBe(
      'Patient?identifier=http%3A%2F%2Fhosp%7C123',
    );
  });
  it('keeps escapes through URL encoding and joins parameters with &', () => {
    const token = identifierToken({ system: 'urn:x', value: 'a|b c&d' })!;
    const url = conditionalUrl('Observation', [
      ['identifier', token],
      ['status', 'final'],
    ]);
    expect(url).toBe('Observation?identifier=urn%3Ax%7Ca%5C%7Cb%20c%26d&status=final');
    const query = new URLSearchParams(url.slice(url.indexOf('?') + 1));
    expect(query.get('identifier')).toBe('urn:x|a\\|b c&d');
  });
  it('rejects a malformed resource type or parameter name, and no parameters', () => {
    expect(() => conditionalUrl('patient', [['identifier', 'x']])).toThrow(TypeError);
    expect(() => conditionalUrl('Patient', [['ident ifier', 'x']])).toThrow(TypeError);
    expect(() => conditionalUrl('Patient', [])).toThrow(TypeError);
    expect(conditionalUrl('Observation', [['subject:Patient.identifier', 'x']])).toBe(
      'Observation?subject:Patient.identifier=x',
    );
  });
});

describe('transaction entries', () => {
  const resource = { resourceType: 'Patient', identifier: [{ system: 'http://hosp', value: '1' }] };
  const fullUrl = 'urn:uuid:6f1e8f3c-0b1a-4e0e-9d3c-1a2b3c4d5e6f';

  it('builds a PUT entry without undefined members', () => {
    const entry = transactionEntry({ fullUrl, resource, method: 'PUT', url: 'Patient?identifier=x' });
    expect(entry).toEqual({ fullUrl, resource, request: { method: 'PUT', url: 'Patient?identifier=x' } });
    expect(Object.keys(entry.request!)).toEqual(['method', 'url']);
  });
  it('builds a POST entry with ifNoneExist, and refuses ifNoneExist on PUT', () => {
    const entry = transactionEntry({
      fullUrl,
      resource,
      method: 'POST',
      url: 'Patient',
      ifNoneExist: 'identifier=x',
    });
    expect(entry.request).toEqual({ method: 'POST', url: 'Patient', ifNoneExist: 'identifier=x' });
    expect(() =>
      transactionEntry({ fullUrl, resource, method: 'PUT', url: 'Patient', ifNoneExist: 'a=b' }),
    ).toThrow(TypeError);
  });
  it('conditional update and create helpers', () => {
    const params = [['identifier', identifierToken({ system: 'http://hosp', value: '1' })!]] as const;
    expect(conditionalUpdateEntry(fullUrl, resource, params).request).toEqual({
      method: 'PUT',
      url: 'Patient?identifier=http%3A%2F%2Fhosp%7C1',
    });
    expect(conditionalCreateEntry(fullUrl, resource, params).request).toEqual({
      method: 'POST',
      url: 'Patient',
      ifNoneExist: conditionalQuery(params),
    });
  });
});
