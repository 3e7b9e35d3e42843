import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  loadVocabularies,
  parseCsv,
  parseVocabularyCsv,
  vocabulariesFromTables,
} from './vocabulary-loader.js';

const VOCABULARY_DIR = fileURLToPath(new URL('../../mappings/vocabulary', import.meta.url));
const IG_DIR = fileURLToPath(
  new URL('../../../shared/corpus/hl7-v2-to-fhir-ig/mappings/codesystems', import.meta.url),
);

const scratch = mkdtempSync(join(tmpdir(), 'hl7e-vocab-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let dirCount = 0;

/** A fresh directory holding the given files. */
function dirWith(files: Record<string, string | Uint8Array>): string {
  const dir = join(scratch, `d${dirCount++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe('parseCsv', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF and LF', () => {
    const { records, problems } = parseCsv('a,"b,c","say ""hi"""\r\nd,"two\nlines",e\nf,,\n');
    expect(problems).toEqual([]);
    expect(records).toEqual([
      { line: 1, cells: ['a', 'b,c', 'say "hi"'] },
      { line: 2, cells: ['d', 'two\nlines', 'e'] },
      { line: 4, cells: ['f', '', ''] },
    ]);
  });

  it('drops a BOM, skips blank lines, reads a last line without a line end', () => {
    const { records } = parseCsv('\uFEFFx,y\n\n  \r\nz,w');
    expect(records).toEqual([
      { line: 1, cells: ['x', 'y'] },
      { line: 4, cells: ['z', 'w'] },
    ]);
  });

  it('reports an unclosed quote at the line it opened and text after a closing quote', () => {
    expect(parseCsv('a,b\nc,"open\nmore').problems).toEqual([
      { line: 2, message: 'quoted field is not closed' },
    ]);
    const after = parseCsv('a,"b"x,c\nd,e\n');
    expect(after.problems).toEqual([{ line: 1, message: 'text after a closing quote' }]);
    expect(after.records).toEqual([{ line: 2, cells: ['d', 'e'] }]);
  });
});

describe('parseVocabularyCsv', () => {
  it('accepts the header with or without comment and leaves empty optional cells out', () => {
    const four = parseVocabularyCsv(
      't.csv',
      'v2,code,system,display\nF,female,http://hl7.org/fhir/administrative-gender,Female\nX,y\n',
    );
    expect(four.problems).toEqual([]);
    expect(four.rows).toEqual([
      { v2: 'F', code: 'female', system: 'http://hl7.org/fhir/administrative-gender', display: 'Female' },
      { v2: 'X', code: 'y' },
    ]);
    const five = parseVocabularyCsv(
      't.csv',
      'v2,code,system,display,comment\nA,b,urn:oid:1.2.3,,"a note, quoted"\n',
    );
    expect(five.rows).toEqual([{ v2: 'A', code: 'b', system: 'urn:oid:1.2.3', comment: 'a note, quoted' }]);
  });

  it.each([
    'v2,code,system',
    'v2,code,system,display,notes',
    'V2,code,system,display',
    'code,v2,system,display',
    'v2,code,system,display,comment,extra',
    'v2,code,system,display,',
  ])('rejects the header %j', (header) => {
    const { rows, problems } = parseVocabularyCsv('t.csv', `${header}\nA,b,,\n`);
    expect(rows).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: 't.csv', line: 1 });
  });

  it('reports missing codes, repeated v2 codes, bad systems and extra columns by line', () => {
    const text = [
      'v2,code,system,display',
      'A,a,http://x.org/cs,',
      ',b,,',
      'C,,,',
      'A,other,,',
      'D,d,not a uri,',
      'E,e,,,',
      'F,f,urn:oid:2.16.840.1.113883.6.238,',
    ].join('\n');
    const { rows, problems } = parseVocabularyCsv('t.csv', text);
    expect(rows?.map((r) => r.v2)).toEqual(['A', 'F']);
    expect(problems.map((p) => p.line)).toEqual([3, 4, 5, 6, 7]);
    expect(problems[2]!.message).toContain('line 2');
  });
});

describe('vocabulariesFromTables', () => {
  const vocab = vocabulariesFromTables({
    Sex: [
      { v2: 'F', code: 'female', system: 'http://hl7.org/fhir/administrative-gender', display: 'Female' },
      { v2: 'Internet', code: 'email' },
      { v2: 'INTERNET', code: 'other' },
    ],
  });

  it('looks up exactly first, then case-insensitively', () => {
    expect(vocab.lookup('Sex', 'F')).toEqual({
      code: 'female',
      system: 'http://hl7.org/fhir/administrative-gender',
      display: 'Female',
    });
    expect(vocab.lookup('Sex', 'f')?.code).toBe('female');
    expect(vocab.lookup('Sex', 'INTERNET')?.code).toBe('other');
    expect(vocab.lookup('Sex', 'Internet')?.code).toBe('email');
    expect(vocab.lookup('Sex', 'internet')?.code).toBe('email');
    expect(vocab.lookup('Sex', 'M')).toBeUndefined();
    expect(vocab.lookup('Nope', 'F')).toBeUndefined();
    expect(vocab.has('Sex')).toBe(true);
    expect(vocab.has('Nope')).toBe(false);
  });

  it('hashes a table as the CSV file of its rows would be hashed', () => {
    const rows = [{ v2: 'A', code: 'b', display: 'x, "y"' }];
    const expected = createHash('sha256')
      .update('v2,code,system,display,comment\nA,b,,"x, ""y""",\n')
      .digest('hex');
    expect(vocabulariesFromTables({ T: rows }).hashOf('T')).toBe(expected);
    expect(vocab.hashOf('Nope')).toBeUndefined();
  });
});

describe('loadVocabularies', () => {
  it('loads BOM and CRLF files, hashes the file bytes, and lets earlier directories win', () => {
    const sexFile =
      '\uFEFFv2,code,system,display\r\nF,female,http://hl7.org/fhir/administrative-gender,Female\r\n';
    const first = dirWith({ 'Sex.csv': sexFile, 'notes.txt': 'not a table' });
    const second = dirWith({
      'Sex.csv': 'v2,code,system,display\nF,other,,\nM,male,,\n',
      'Class.csv':
        'v2,code,system,display\nE,EMER,http://terminology.hl7.org/CodeSystem/v3-ActCode,emergency\n',
    });
    const { vocabularies, problems } = loadVocabularies([first, second]);
    expect(problems).toEqual([]);
    expect(vocabularies.lookup('Sex', 'F')?.code).toBe('female');
    expect(vocabularies.lookup('Sex', 'M')).toBeUndefined(); // whole tables shadow, rows do not merge
    expect(vocabularies.lookup('Class', 'e')?.code).toBe('EMER');
    expect(vocabularies.has('notes')).toBe(false);
    expect(vocabularies.hashOf('Sex')).toBe(
      createHash('sha256').update(Buffer.from(sexFile, 'utf8')).digest('hex'),
    );
  });

  it('reports problems with file and line; a bad header drops the table, bad rows drop only the row', () => {
    const dir = dirWith({
      'Bad.csv': 'v2;code;system;display\nA;b;;\n',
      'Dup.csv': 'v2,code,system,display\nA,a,,\nB,b,,\nA,c,,\n',
      'bad name.csv': 'v2,code,system,display\n',
      'Latin1.csv': Buffer.from([0x76, 0x32, 0x2c, 0xe9, 0x0a]),
    });
    const { vocabularies, problems } = loadVocabularies([dir, join(dir, 'missing')]);
    expect(vocabularies.has('Bad')).toBe(false);
    expect(vocabularies.lookup('Dup', 'A')?.code).toBe('a');
    expect(vocabularies.lookup('Dup', 'B')?.code).toBe('b');
    expect(problems).toEqual([
      expect.objectContaining({ file: join(dir, 'Bad.csv'), line: 1 }),
      expect.objectContaining({ file: join(dir, 'Dup.csv'), line: 4 }),
      expect.objectContaining({ file: join(dir, 'Latin1.csv'), line: 0, message: 'file is not UTF-8' }),
      expect.objectContaining({ file: join(dir, 'bad name.csv'), line: 0 }),
      expect.objectContaining({ file: join(dir, 'missing'), line: 0 }),
    ]);
  });
});

/** The IG concept map's rows as [v2 code, FHIR code, FHIR system] (shared/corpus, read in place). */
function igRows(map: string): [string, string, string][] {
  const text = readFileSync(join(IG_DIR, `HL7 Concept Map_ ${map} - Sheet1.csv`), 'utf8');
  const [, header, ...rows] = parseCsv(text).records.map((r) => r.cells.map((c) => c.trim()));
  const codeAt = header!.findIndex((h, i) => h === 'Code' && i > 2);
  const systemAt = header!.lastIndexOf('Code System');
  const conditionCells = (r: string[]) => r.slice(3, codeAt).filter((c) => c !== '');
  return rows
    .filter((r) => r[0] !== '' && r[codeAt] !== '' && conditionCells(r).length === 0)
    .map((r) => [r[0]!, r[codeAt]!, r[systemAt]!]);
}

describe('mappings/vocabulary', () => {
  const { vocabularies: vocab, problems } = loadVocabularies([VOCABULARY_DIR]);

  it('loads with zero problems', () => {
    expect(problems).toEqual([]);
  });

  // table → IG concept map it was converted from; every unconditional IG row must come through unchanged.
  const fromIg: Record<string, string> = {
    AdministrativeSex: 'AdministrativeSex',
    PatientClass: 'PatientClass[EncounterClass]',
    PatientClassStatus: 'PatientClass[EncounterStatus]',
    ObservationResultStatus: 'ObservationResultStatusCodesInterpretation',
    ResultStatus: 'ResultStatus[Non-Queries]',
    AbnormalFlags: 'InterpretationCodes',
    OrderControlStatus: 'OrderControlCode[ServiceRequest.status]',
    OrderStatus: 'OrderStatus',
    IdentifierType: 'IdentifierType',
    NameType: 'NameType',
    AddressType: 'AddressType[Use]',
    AddressTypeType: 'AddressType[Type]',
    TelecomUse: 'TelecommunicationUseCode',
    TelecomEquipment: 'TelecommunicationEquipmentType',
    MaritalStatus: 'MaritalStatus',
    Relationship: 'Relationship',
    ContactRole: 'ContactRole',
    AllergenType: 'AllergenType[AllergyIntoleranceCategory]',
    AllergySeverity: 'AllergySeverity[AllergyIntolerance.criticality]',
    AllergyReactionSeverity: 'AllergySeverity[AllergyIntolerance.reaction.severity]',
    AllergyType: 'AllergyType',
    DiagnosisType: 'DiagnosisType',
    AdmissionType: 'AdmissionType',
    EncounterPriority: 'EncounterPriority',
    Religion: 'Religion',
    ProcessingID: 'ProcessingID',
    Priority: 'ExtendedPriorityCodes',
    SpecimenType: 'SpecimenType',
    EventEncounterStatus: 'Event[EncounterStatus]',
    HospitalService: 'HospitalService',
  };
  // Deliberate departures from the IG, each explained in the row's comment.
  const departures = new Set(['TelecomEquipment CP']);

  it.each(Object.entries(fromIg))('%s carries every unconditional row of the IG map %s', (table, map) => {
    expect(vocab.has(table)).toBe(true);
    const rows = igRows(map);
    expect(rows.length).toBeGreaterThan(0);
    for (const [v2, code, system] of rows) {
      if (departures.has(`${table} ${v2}`)) continue;
      expect({ v2, ...vocab.lookup(table, v2) }).toMatchObject({ v2, code, system });
    }
  });

  it.each([
    ['AdministrativeSex', 'F', 'female', 'http://hl7.org/fhir/administrative-gender'],
    ['AdministrativeSex', 'A', 'other', 'http://hl7.org/fhir/administrative-gender'],
    ['PatientClass', 'I', 'IMP', 'http://terminology.hl7.org/CodeSystem/v3-ActCode'],
    ['PatientClass', 'O', 'AMB', 'http://terminology.hl7.org/CodeSystem/v3-ActCode'],
    ['PatientClassStatus', 'P', 'planned', 'http://hl7.org/fhir/encounter-status'],
    ['ObservationResultStatus', 'F', 'final', 'http://hl7.org/fhir/observation-status'],
    ['ObservationResultStatus', 'X', 'cancelled', 'http://hl7.org/fhir/observation-status'],
    ['ObservationResultStatus', 'I', 'registered', 'http://hl7.org/fhir/observation-status'],
    ['ObservationResultStatus', 'R', 'preliminary', 'http://hl7.org/fhir/observation-status'],
    ['ResultStatus', 'S', 'registered', 'http://hl7.org/fhir/diagnostic-report-status'],
    ['ResultStatus', 'A', 'partial', 'http://hl7.org/fhir/diagnostic-report-status'],
    ['ResultStatus', 'C', 'corrected', 'http://hl7.org/fhir/diagnostic-report-status'],
    ['AbnormalFlags', 'H', 'H', 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation'],
    ['AbnormalFlags', '<', '<', 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation'],
    ['OrderControlStatus', 'NW', 'active', 'http://hl7.org/fhir/request-status'],
    ['OrderControlStatus', 'DC', 'revoked', 'http://hl7.org/fhir/request-status'],
    ['OrderControlIntent', 'NW', 'order', 'http://hl7.org/fhir/request-intent'],
    ['OrderControlIntent', 'XO', 'order', 'http://hl7.org/fhir/request-intent'],
    ['OrderStatus', 'CM', 'completed', 'http://hl7.org/fhir/request-status'],
    ['IdentifierType', 'MR', 'MR', 'http://terminology.hl7.org/CodeSystem/v2-0203'],
    ['NameType', 'L', 'official', 'http://hl7.org/fhir/name-use'],
    ['AddressType', 'H', 'home', 'http://hl7.org/fhir/address-use'],
    ['AddressTypeType', 'M', 'postal', 'http://hl7.org/fhir/address-type'],
    ['TelecomUse', 'PRN', 'home', 'http://hl7.org/fhir/contact-point-use'],
    ['TelecomEquipment', 'Internet', 'email', 'http://hl7.org/fhir/contact-point-system'],
    ['TelecomEquipment', 'CP', 'phone', 'http://hl7.org/fhir/contact-point-system'],
    ['MaritalStatus', 'S', 'S', 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus'],
    ['MaritalStatus', 'U', 'UNK', 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor'],
    ['Relationship', 'SPO', 'SPS', 'http://terminology.hl7.org/CodeSystem/v3-RoleCode'],
    ['ContactRole', 'N', 'N', 'http://terminology.hl7.org/CodeSystem/v2-0131'],
    ['AllergenType', 'DA', 'medication', 'http://hl7.org/fhir/allergy-intolerance-category'],
    ['AllergySeverity', 'SV', 'high', 'http://hl7.org/fhir/allergy-intolerance-criticality'],
    ['AllergyReactionSeverity', 'MO', 'moderate', 'http://hl7.org/fhir/reaction-event-severity'],
    ['DiagnosisType', 'A', 'AD', 'http://terminology.hl7.org/CodeSystem/diagnosis-role'],
    ['Priority', 'S', 'stat', 'http://hl7.org/fhir/request-priority'],
    ['Priority', 'R', 'routine', 'http://hl7.org/fhir/request-priority'],
    ['ProcessingID', 'P', 'P', 'http://terminology.hl7.org/CodeSystem/v2-0103'],
    ['EncounterPriority', '1', 'EM', 'http://terminology.hl7.org/CodeSystem/v3-ActPriority'],
  ])('%s %s → %s', (table, v2, code, system) => {
    expect(vocab.lookup(table, v2)).toMatchObject({ code, system });
  });

  it('leaves out codes the IG does not map', () => {
    expect(vocab.lookup('Priority', 'P')).toBeUndefined();
    expect(vocab.lookup('NameType', 'B')).toBeUndefined();
    expect(vocab.lookup('AllergySeverity', 'MO')).toBeUndefined();
  });

  it.each([
    ['LN', 'http://loinc.org'],
    ['SCT', 'http://snomed.info/sct'],
    ['I10', 'http://hl7.org/fhir/sid/icd-10'],
    ['I10C', 'http://hl7.org/fhir/sid/icd-10-cm'],
    ['I10P', 'http://www.cms.gov/Medicare/Coding/ICD10'],
    ['I9CDX', 'http://hl7.org/fhir/sid/icd-9-cm'],
    ['C4', 'http://www.ama-assn.org/go/cpt'],
    ['RXNORM', 'http://www.nlm.nih.gov/research/umls/rxnorm'],
    ['NDC', 'http://hl7.org/fhir/sid/ndc'],
    ['CVX', 'http://hl7.org/fhir/sid/cvx'],
    ['UCUM', 'http://unitsofmeasure.org'],
    ['NPI', 'http://hl7.org/fhir/sid/us-npi'],
    ['HCPCS', 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'],
    ['CDCREC', 'urn:oid:2.16.840.1.113883.6.238'],
    ['ISO3166_1', 'urn:iso:std:iso:3166'],
  ])('CodingSystem %s → %s', (name, uri) => {
    expect(vocab.lookup('CodingSystem', name)).toEqual({ code: uri, display: expect.any(String) });
  });

  it('lists no local or HL7-table coding systems (the engine handles those)', () => {
    expect(vocab.lookup('CodingSystem', 'L')).toBeUndefined();
    expect(vocab.lookup('CodingSystem', 'HL70001')).toBeUndefined();
  });

  it('has a README paragraph for every table', () => {
    const readme = readFileSync(join(VOCABULARY_DIR, 'README.md'), 'utf8');
    const tables = readdirSync(VOCABULARY_DIR)
      .filter((f) => f.endsWith('.csv'))
      .map((f) => f.slice(0, -4));
    expect(tables.filter((t) => !readme.includes(`**${t}**`))).toEqual([]);
  });
});
