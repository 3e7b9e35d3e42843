import type { Converter } from '../converter.js';

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const URI = /^[a-z][a-z0-9+.-]*:\S+$/i;
/** Identifier systems for assigning authorities that carry only a namespace and no table row. */
export const LOCAL_AUTHORITY_PREFIX = 'urn:hl7e:assigning-authority:';

/**
 * HD → Identifier.system (the IG's HD[uri]): the universal id when there is one (HD-2 typed by HD-3: ISO →
 * `urn:oid:`, UUID → `urn:uuid:`, URI as is); else the namespace id HD-1, translated through the
 * `AssigningAuthority` table when the site lists it (MRN namespaces → the site's system URIs), else a
 * stable local URN. Used for CX-4, XCN-9, EI-2/3.
 */
export const hdSystem: Converter = (el, ctx) => authoritySystem(el.text(1), el.text(2), el.text(3), ctx);

/** EI → Identifier.system: EI-2..4 are an HD's three parts (namespace, universal id, its type). */
export const eiSystem: Converter = (el, ctx) => authoritySystem(el.text(2), el.text(3), el.text(4), ctx);

function authoritySystem(
  namespace: string,
  universal: string,
  universalType: string,
  ctx: Parameters<Converter>[1],
): string | undefined {
  const type = universalType.toUpperCase();
  if (universal !== '') {
    if ((type === 'ISO' || type === '') && OID.test(universal)) return `urn:oid:${universal}`;
    if ((type === 'UUID' || type === 'GUID' || type === '') && UUID.test(universal))
      return `urn:uuid:${universal.toLowerCase()}`;
    if (URI.test(universal)) return universal;
  }
  if (namespace === '') return undefined;
  const listed = ctx.vocabulary.has('AssigningAuthority')
    ? ctx.vocabulary.lookup('AssigningAuthority', namespace)
    : undefined;
  if (listed) return listed.code;
  if (URI.test(namespace)) return namespace;
  return LOCAL_AUTHORITY_PREFIX + encodeURIComponent(namespace);
}
