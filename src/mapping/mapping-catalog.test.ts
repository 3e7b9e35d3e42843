import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '../hl7/index.js';
import { convertMessage } from './conversion.js';
import { BUILTIN_MAPPINGS_DIR, MappingCatalog, siteMappingDirs } from './mapping-catalog.js';

// A site folder in front of the shipped maps, as HL7E_MAPPINGS_DIR puts it (made-up data).
const site = mkdtempSync(join(tmpdir(), 'hl7e-site-maps-'));
afterAll(() => rmSync(site, { recursive: true, force: true }));
mkdirSync(join(site, 'messages'));
mkdirSync(join(site, 'segments'));

const ADT = [
  'MSH|^~\\&|REG|HOSP|HL7E|HOSP|20260105100000||ADT^A01^ADT_A01|C1|P|2.5.1',
  'PID|1||M1^^^HOSP^MR||Doe^Jo||19800101|F||||||||||||||||||||||||||||||||||||||Z-EXTRA',
  'ZPD|1|VIP',
].join('\r');

function convert(catalog: MappingCatalog, mapping?: string) {
  return convertMessage(parse(ADT), {
    catalog,
    mapping,
    rawSha256: createHash('sha256').update(ADT).digest('hex'),
  });
}

describe('MappingCatalog: a site map that extends a shipped one', () => {
  writeFileSync(
    join(site, 'messages', 'site-ADT.yaml'),
    [
      'message: site-ADT',
      'extends: ADT_A01',
      'ignore: [ZPD]',
      'segments:',
      '  PID-Patient:',
      '    remove: [birthDate]',
      '    add:',
      "      - { from: 7, to: 'extension[url=urn:example:dob].valueDate', type: DTM-date }",
    ].join('\n'),
  );
  const catalog = MappingCatalog.load([site, BUILTIN_MAPPINGS_DIR]);

  it('changes only what it says: a rule removed, a rule added, a segment ignored', () => {
    expect(catalog.checkAll()).toEqual([]);
    const base = convert(catalog);
    const own = convert(catalog, 'site-ADT');
    const patient = (b: typeof base) =>
      b.bundle.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource as Record<
        string,
        unknown
      >;
    expect(patient(base).birthDate).toBe('1980-01-01');
    expect(patient(own).birthDate).toBeUndefined();
    expect(patient(own).extension).toContainEqual({ url: 'urn:example:dob', valueDate: '1980-01-01' });
    expect(base.report.unmappedSegments).toContain('ZPD[1]');
    expect(own.report.unmappedSegments).not.toContain('ZPD[1]');
    // Its own version: a changed map changes every id the Bundle derives from it.
    expect(own.mapping.version).not.toBe(base.mapping.version);
  });

  it('is not a default for the types its base accepts', () => {
    expect(catalog.defaultFor('ADT', 'A01')).toBe('ADT_A01');
  });

  it('replaces a shipped map of the same name', () => {
    writeFileSync(
      join(site, 'segments', 'PID-Patient.yaml'),
      'segment: PID\nresource: Patient\nrules:\n  - { from: 3, to: "identifier[]", type: CX-Identifier }\n',
    );
    const replaced = MappingCatalog.load([site, BUILTIN_MAPPINGS_DIR]);
    const patient = convert(replaced).bundle.entry?.find(
      (e) => e.resource?.resourceType === 'Patient',
    )?.resource;
    expect(patient).not.toHaveProperty('name');
    expect(convert(replaced).report.unmappedFields).toContain('PID[1]-5');
    rmSync(join(site, 'segments', 'PID-Patient.yaml'));
  });
});

describe('MappingCatalog: problems name the file, line and key', () => {
  it('reports a schema problem and an unknown map at their lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7e-bad-maps-'));
    try {
      mkdirSync(join(dir, 'messages'));
      mkdirSync(join(dir, 'segments'));
      writeFileSync(
        join(dir, 'segments', 'BAD-Thing.yaml'),
        'segment: PID\nresource: Patient\nrules:\n  - { form: 3, to: x }\n',
      );
      writeFileSync(
        join(dir, 'messages', 'broken.yaml'),
        'message: broken\naccepts: [ZZZ^Z01]\nresources:\n  - name: patient\n    segment: PID\n    map: NO-SUCH-MAP\n',
      );
      const catalog = MappingCatalog.load([dir, BUILTIN_MAPPINGS_DIR]);
      expect(catalog.problems).toContainEqual(
        expect.objectContaining({
          file: join(dir, 'segments', 'BAD-Thing.yaml'),
          line: 4,
          key: 'rules.0.form',
          message: 'unknown key',
        }),
      );
      expect(catalog.check('broken')).toContainEqual(
        expect.objectContaining({
          file: join(dir, 'messages', 'broken.yaml'),
          line: 6,
          key: 'resources.0.map',
        }),
      );
      expect(() => catalog.compile('broken')).toThrow(expect.objectContaining({ code: 'MAPPING_INVALID' }));
      expect(() => catalog.compile('nothing-by-this-name')).toThrow(
        expect.objectContaining({ code: 'MAPPING_NOT_FOUND' }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const siteRoot = mkdtempSync(join(tmpdir(), 'hl7e-site-dirs-'));
afterAll(() => rmSync(siteRoot, { recursive: true, force: true }));

describe('siteMappingDirs', () => {
  it('puts an existing site folder before the shipped one', () => {
    const site = join(siteRoot, 'site');
    mkdirSync(site);
    expect(siteMappingDirs(site)).toEqual([site, BUILTIN_MAPPINGS_DIR]);
  });

  it('skips a site folder that does not exist', () => {
    expect(siteMappingDirs(join(siteRoot, 'absent'))).toEqual([BUILTIN_MAPPINGS_DIR]);
  });

  it('lists the shipped folder once when the site folder is the same (run from the repository root)', () => {
    const link = join(siteRoot, 'link');
    symlinkSync(BUILTIN_MAPPINGS_DIR, link);
    expect(siteMappingDirs(link)).toEqual([BUILTIN_MAPPINGS_DIR]);
    expect(siteMappingDirs(BUILTIN_MAPPINGS_DIR)).toEqual([BUILTIN_MAPPINGS_DIR]);
  });
});
