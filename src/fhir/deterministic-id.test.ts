import { describe, expect, it } from 'vitest';
import {
  deterministicUrn,
  deterministicUuid,
  HL7E_NAMESPACE,
  uuidFactory,
  uuidV5,
} from './deterministic-id.js';

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidV5', () => {
  it('matches the RFC 4122 / RFC 9562 name-based vectors', () => {
    // DNS namespace (RFC 4122 Appendix C); the value Python's uuid.uuid5 and npm uuid.v5 give.
    const dns = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
    expect(uuidV5(dns, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
    expect(uuidV5(dns, 'python.org')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
  });
});

describe('deterministicUuid', () => {
  it('is a version-5 UUID in the engine namespace over length-prefixed parts', () => {
    const id = deterministicUuid('abc', 'é');
    expect(id).toMatch(UUID_V5);
    // 'é' is 2 UTF-8 bytes: the prefix counts bytes, not UTF-16 units.
    expect(id).toBe(uuidV5(HL7E_NAMESPACE, '3:abc2:é'));
  });

  it('is stable and sensitive to every part and to part boundaries', () => {
    expect(deterministicUuid('msg-sha', 'map-v1', '3')).toBe(deterministicUuid('msg-sha', 'map-v1', '3'));
    expect(deterministicUuid('msg-sha', 'map-v1', '3')).not.toBe(deterministicUuid('msg-sha', 'map-v1', '4'));
    expect(deterministicUuid('ab', 'c')).not.toBe(deterministicUuid('a', 'bc'));
    expect(deterministicUuid('a', '')).not.toBe(deterministicUuid('a'));
    expect(deterministicUuid('1:a')).not.toBe(deterministicUuid('a', ''));
  });

  it('gives distinct ids for many inputs', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(deterministicUuid('m', String(i)));
    expect(ids.size).toBe(10_000);
  });

  it('deterministicUrn is the urn:uuid form FHIR fullUrls take', () => {
    expect(deterministicUrn('x')).toBe(`urn:uuid:${deterministicUuid('x')}`);
    expect(deterministicUrn('x')).toMatch(
      /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
  });
});

describe('uuidFactory', () => {
  it('gives what deterministicUuid gives for the same parts', () => {
    const make = uuidFactory('sha', 'version');
    expect(make('0:3')).toBe(deterministicUuid('sha', 'version', '0:3'));
    expect(make('bundle')).toBe(deterministicUuid('sha', 'version', 'bundle'));
    expect(make('a')).not.toBe(make('b'));
  });
});
