import type { Converter } from '../converter.js';
import type { V2Element } from '../v2-element.js';

/** FHIR R4 Attachment (https://hl7.org/fhir/R4/datatypes.html#Attachment), the part the ED map fills. */
export interface Attachment {
  contentType?: string;
  data?: string;
}

/**
 * ED-3 data subtype → MIME type: HL7 table 0291 (v2.5.1: BASIC, DICOM, FAX, GIF, HTML, JOT, JPEG,
 * Octet-stream, PICT, PostScript, RTF, SGML, TIFF, XML, x-hl7-cda-level-one) plus the user-defined values
 * senders commonly put there (PDF, PNG, …). Keys upper-case.
 */
const SUBTYPE_MIME: Readonly<Record<string, string>> = {
  BASIC: 'audio/basic',
  DICOM: 'application/dicom',
  FAX: 'image/g3fax',
  GIF: 'image/gif',
  HTML: 'text/html',
  JPEG: 'image/jpeg',
  JPG: 'image/jpeg',
  'OCTET-STREAM': 'application/octet-stream',
  PICT: 'image/x-pict',
  POSTSCRIPT: 'application/postscript',
  RTF: 'application/rtf',
  SGML: 'text/sgml',
  TIFF: 'image/tiff',
  TIF: 'image/tiff',
  XML: 'application/xml',
  'X-HL7-CDA-LEVEL-ONE': 'multipart/x-hl7-cda-level-one',
  PDF: 'application/pdf',
  PNG: 'image/png',
  BMP: 'image/bmp',
  PLAIN: 'text/plain',
  MSWORD: 'application/msword',
  WAV: 'audio/wav',
  MPEG: 'audio/mpeg',
};

/**
 * ED-2 type of data → MIME top-level type: HL7 table 0191 (AP application data, AU audio, FT formatted
 * text, IM image, NS non-scanned image, SI scanned image, SD scanned document, TEXT, TX (v2.2),
 * multipart) and, v2.3+, the MIME top-level names themselves. Keys upper-case.
 */
const TYPE_MIME: Readonly<Record<string, string>> = {
  AP: 'application',
  APPLICATION: 'application',
  AU: 'audio',
  AUDIO: 'audio',
  IM: 'image',
  IMAGE: 'image',
  NS: 'image',
  SI: 'image',
  FT: 'text',
  TEXT: 'text',
  TX: 'text',
  VIDEO: 'video',
  MODEL: 'model',
  MULTIPART: 'multipart',
};

/** A MIME type or subtype token (RFC 6838 restricted-name characters). */
const MIME_TOKEN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;
const WHITESPACE = /\s+/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX = /^[0-9A-Fa-f]*$/;

/** The first bytes of common documents in base64, for an ED whose type/subtype say nothing usable. */
const MAGIC: ReadonlyArray<readonly [string, string]> = [
  ['JVBERi0', 'application/pdf'],
  ['/9j/', 'image/jpeg'],
  ['iVBORw0KGgo', 'image/png'],
  ['R0lGOD', 'image/gif'],
];

/** ED-2 + ED-3 → a MIME type, or undefined when they name none. */
export function contentTypeOf(typeOfData: string, subtype: string): string | undefined {
  const sub = subtype.trim();
  if (sub !== '') {
    const slash = sub.indexOf('/');
    if (slash > 0) {
      return MIME_TOKEN.test(sub.slice(0, slash)) && MIME_TOKEN.test(sub.slice(slash + 1))
        ? sub.toLowerCase()
        : undefined;
    }
    const known = SUBTYPE_MIME[sub.toUpperCase()];
    if (known !== undefined) return known;
  }
  const main = TYPE_MIME[typeOfData.trim().toUpperCase()];
  if (main === undefined) return undefined;
  if (sub !== '' && MIME_TOKEN.test(sub)) return `${main}/${sub.toLowerCase()}`;
  if (main === 'text') return 'text/plain';
  if (main === 'application') return 'application/octet-stream';
  return undefined;
}

function sniff(base64: string): string | undefined {
  for (const [prefix, mime] of MAGIC) if (base64.startsWith(prefix)) return mime;
  return undefined;
}

/** Base64 text (line breaks and blanks allowed) → canonical base64; missing `=` padding is restored. */
export function normalizeBase64(text: string): string | undefined {
  const s = text.replace(WHITESPACE, '');
  if (s === '' || !BASE64.test(s)) return undefined;
  const rest = s.length % 4;
  if (rest === 0) return s;
  if (rest === 1 || s.endsWith('=')) return undefined;
  return rest === 2 ? `${s}==` : `${s}=`;
}

/** Hex text (blanks allowed) → base64. */
export function hexToBase64(text: string): string | undefined {
  const s = text.replace(WHITESPACE, '');
  if (s === '' || s.length % 2 !== 0 || !HEX.test(s)) return undefined;
  return Buffer.from(s, 'hex').toString('base64');
}

/**
 * ED (`source ^ type ^ subtype ^ encoding ^ data`) → Attachment, per the IG's ED[Attachment]: `data` from
 * ED-5 by ED-4 encoding (HL7 table 0299: `Base64` as is, `Hex` and `A` (text) converted to base64);
 * `contentType` from ED-2/ED-3 (see contentTypeOf), else recognised from the data's first bytes (the IG
 * warns that senders' type/subtype are not always accurate). Reads the element's parts one level down,
 * so an ED field (an OBX-5 repetition, components) and an ED component (subcomponents) both work.
 * Undefined when the data is missing, the encoding unknown, or the data not valid for its encoding.
 */
export function toAttachment(el: V2Element): Attachment | undefined {
  const encoding = el.text(4).trim().toUpperCase();
  // fullText: the data may carry escapes (\.br\ between base64 lines, \F\ in text) and, in a
  // component, `&`-looking text; value() would stop at the first subcomponent separator.
  const raw = el.part(5).fullText();
  let data: string | undefined;
  if (encoding === 'BASE64') data = normalizeBase64(raw);
  else if (encoding === 'HEX') data = hexToBase64(raw);
  else if (encoding === 'A') data = raw === '' ? undefined : Buffer.from(raw, 'utf8').toString('base64');
  if (data === undefined) return undefined;
  const contentType = contentTypeOf(el.text(2), el.text(3)) ?? sniff(data);
  return contentType === undefined ? { data } : { contentType, data };
}

/** The `ED` converter. */
export const edAttachment: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const attachment = toAttachment(el);
  if (attachment === undefined) ctx.invalid('ED');
  return attachment;
};
