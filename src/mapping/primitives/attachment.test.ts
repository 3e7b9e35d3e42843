import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS } from '../../hl7/delimiters.js';
import type { ConvertContext } from '../converter.js';
import { V2Element } from '../v2-element.js';
import { contentTypeOf, edAttachment, hexToBase64, normalizeBase64, toAttachment } from './attachment.js';

const field = (raw: string) => new V2Element(raw, 0, DEFAULT_DELIMITERS);
const PDF_B64 = Buffer.from('%PDF-1.4 hello').toString('base64');

describe('contentTypeOf (tables 0191/0291)', () => {
  it('maps type and subtype', () => {
    expect(contentTypeOf('AP', 'PDF')).toBe('application/pdf');
    expect(contentTypeOf('Application', 'pdf')).toBe('application/pdf');
    expect(contentTypeOf('IM', 'JPEG')).toBe('image/jpeg');
    expect(contentTypeOf('TEXT', '')).toBe('text/plain');
    expect(contentTypeOf('TX', '')).toBe('text/plain');
    expect(contentTypeOf('TEXT', 'HTML')).toBe('text/html');
    expect(contentTypeOf('multipart', 'x-hl7-cda-level-one')).toBe('multipart/x-hl7-cda-level-one');
    expect(contentTypeOf('AP', '')).toBe('application/octet-stream');
    expect(contentTypeOf('IM', 'webp')).toBe('image/webp');
    expect(contentTypeOf('', 'application/pdf')).toBe('application/pdf');
  });

  it('names nothing it cannot', () => {
    expect(contentTypeOf('IM', '')).toBeUndefined();
    expect(contentTypeOf('SD', '')).toBeUndefined();
    expect(contentTypeOf('', '')).toBeUndefined();
    expect(contentTypeOf('IM', 'bad sub')).toBeUndefined();
  });
});

describe('base64 and hex', () => {
  it('removes line breaks and restores padding', () => {
    expect(normalizeBase64('SGVs\nbG8g\r\nV29y bGQ=')).toBe('SGVsbG8gV29ybGQ=');
    expect(normalizeBase64('SGVsbG8')).toBe('SGVsbG8=');
    expect(normalizeBase64('SGVsbA')).toBe('SGVsbA==');
  });

  it('rejects what is not base64', () => {
    for (const bad of ['', 'SGVsbG8*', 'SGV=sbG8', 'SGVsb', 'SGVsbG8==x', 'SGVsbA===', 'SGVsbG=']) {
      expect(normalizeBase64(bad), bad).toBeUndefined();
    }
  });

  it('converts hex', () => {
    expect(hexToBase64('48656C6C6F')).toBe(Buffer.from('Hello').toString('base64'));
    expect(hexToBase64('48 65 6c\n6c 6f')).toBe(Buffer.from('Hello').toString('base64'));
    expect(hexToBase64('4865F')).toBeUndefined();
    expect(hexToBase64('48GG')).toBeUndefined();
  });
});

describe('toAttachment / ED converter', () => {
  it('reads an OBX-5 ED with Base64 data', () => {
    expect(toAttachment(field(`^AP^PDF^Base64^${PDF_B64}`))).toEqual({
      contentType: 'application/pdf',
      data: PDF_B64,
    });
  });

  it('accepts base64 split by escaped line breaks', () => {
    const half = PDF_B64.length / 2;
    const wrapped = `${PDF_B64.slice(0, half)}\\.br\\${PDF_B64.slice(half)}`;
    const cr = `${PDF_B64.slice(0, half)}\\X0D0A\\${PDF_B64.slice(half)}`;
    expect(toAttachment(field(`^application^pdf^BASE64^${wrapped}`))?.data).toBe(PDF_B64);
    expect(toAttachment(field(`^application^pdf^base64^${cr}`))?.data).toBe(PDF_B64);
  });

  it('converts Hex and ASCII (escapes decoded) to base64', () => {
    expect(toAttachment(field('^TEXT^^Hex^48656C6C6F'))).toEqual({
      contentType: 'text/plain',
      data: Buffer.from('Hello').toString('base64'),
    });
    expect(toAttachment(field('^TEXT^^A^a\\S\\b & c'))).toEqual({
      contentType: 'text/plain',
      data: Buffer.from('a^b & c').toString('base64'),
    });
  });

  it('recognises common documents when type and subtype say nothing', () => {
    expect(toAttachment(field(`^^^Base64^${PDF_B64}`))?.contentType).toBe('application/pdf');
    expect(toAttachment(field('^IM^^Base64^iVBORw0KGgoAAAA'))?.contentType).toBe('image/png');
  });

  it('reads an ED that is a component (subcomponents)', () => {
    const comp = new V2Element(`&AP&PDF&Base64&${PDF_B64}`, 1, DEFAULT_DELIMITERS);
    expect(toAttachment(comp)).toEqual({ contentType: 'application/pdf', data: PDF_B64 });
  });

  it('reports missing data, unknown encodings and bad data', () => {
    const invalid: string[] = [];
    const ctx = { invalid: (t: string) => invalid.push(t) } as unknown as ConvertContext;
    expect(edAttachment(field(''), ctx)).toBeUndefined();
    expect(edAttachment(field('""'), ctx)).toBeUndefined();
    expect(invalid).toEqual([]);
    expect(edAttachment(field('^AP^PDF^Base64^'), ctx)).toBeUndefined();
    expect(edAttachment(field('^AP^PDF^UU^abcd'), ctx)).toBeUndefined();
    expect(edAttachment(field('^AP^PDF^^abcd'), ctx)).toBeUndefined();
    expect(edAttachment(field('^AP^PDF^Base64^not base64!'), ctx)).toBeUndefined();
    expect(edAttachment(field('^AP^PDF^Hex^XYZ'), ctx)).toBeUndefined();
    expect(invalid).toEqual(['ED', 'ED', 'ED', 'ED', 'ED']);
  });
});
