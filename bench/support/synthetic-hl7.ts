/**
 * Synthetic HL7 v2 traffic for the benchmarks (no real patient data): a seeded population of obviously
 * fake patients and ADT^A01 / ORU^R01 builders of realistic size (~600–1500 bytes), PID-3 first
 * repetition = the patient's MRN (the default ordering key). Seeded, so every run sends the same
 * population and the same message shapes.
 */

/** mulberry32: a small seeded PRNG, so every run uses the same synthetic population. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

const FAMILY = [
  'Testcase',
  'Sampleton',
  'Mockwell',
  'Fakename',
  'Synthia',
  'Dummer',
  'Placeholt',
  'Exampleby',
];
const GIVEN = ['Alex', 'Robin', 'Sam', 'Jordan', 'Casey', 'Morgan', 'Riley', 'Quinn', 'Avery', 'Drew'];
const STREETS = ['Synthetic Way', 'Benchmark Rd', 'Fixture Ln', 'Loadtest Ave', 'Mock St', 'Sample Ct'];
const CITIES = [
  ['Testville', 'NC', '27401'],
  ['Mockburg', 'VA', '22201'],
  ['Sampleton', 'SC', '29201'],
] as const;
const UNITS = ['MED^4N', 'SUR^3W', 'CAR^5E', 'ONC^6S', 'ICU^2C'];
const DIAGNOSES = [
  'J18.9^Pneumonia, unspecified organism',
  'I21.4^Non-ST elevation myocardial infarction',
  'K35.80^Unspecified acute appendicitis',
  'N39.0^Urinary tract infection, site not specified',
  'E11.65^Type 2 diabetes mellitus with hyperglycemia',
];
const ALLERGIES = [
  '7980^Penicillin G^RXNORM|MO|Hives',
  '2670^Codeine^RXNORM|MI|Nausea',
  '1191^Aspirin^RXNORM|SV|Bronchospasm',
  '10831^Sulfamethoxazole^RXNORM|MO|Rash',
];
const PAYERS = [
  'NWHMO^Northwind HMO Gold|60054|Northwind Health Plan|100 Payer Plaza^^Hartford^CT^06101',
  'BENCHPPO^Bench PPO Standard|87726|Synthetic Mutual|200 Claims Dr^^Minneapolis^MN^55401',
];
const OBSERVATIONS = [
  ['2345-7', 'Glucose [Mass/volume] in Serum or Plasma', 'mg/dL', 70, 99],
  ['2160-0', 'Creatinine [Mass/volume] in Serum or Plasma', 'mg/dL', 0.7, 1.3],
  ['3094-0', 'Urea nitrogen [Mass/volume] in Serum or Plasma', 'mg/dL', 7, 20],
  ['2951-2', 'Sodium [Moles/volume] in Serum or Plasma', 'mmol/L', 136, 145],
  ['2823-3', 'Potassium [Moles/volume] in Serum or Plasma', 'mmol/L', 3.5, 5.1],
  ['2075-0', 'Chloride [Moles/volume] in Serum or Plasma', 'mmol/L', 98, 107],
  ['2028-9', 'Carbon dioxide, total [Moles/volume] in Serum or Plasma', 'mmol/L', 22, 29],
  ['17861-6', 'Calcium [Mass/volume] in Serum or Plasma', 'mg/dL', 8.6, 10.3],
  ['6690-2', 'Leukocytes [#/volume] in Blood by Automated count', '10*3/uL', 4.5, 11],
  ['718-7', 'Hemoglobin [Mass/volume] in Blood', 'g/dL', 12, 17.5],
] as const;

export interface Patient {
  /** PID-3 first repetition, CX-1: the ordering key a channel uses by default. */
  readonly mrn: string;
  /** The whole PID segment. */
  readonly pid: string;
  readonly name: string;
}

/** A seeded population and message builders; each draw advances the one PRNG, in call order. */
export class SyntheticHl7 {
  readonly rand: () => number;
  readonly patients: readonly Patient[];
  readonly #doctors: readonly string[];

  constructor(seed: number, patientCount: number) {
    this.rand = prng(seed);
    // Doctors first, then patients: the draw order fixes the population a seed gives.
    this.#doctors = Array.from(
      { length: 40 },
      (_, i) => `${pad(1000 + i * 37, 6)}^${this.#pick(FAMILY)}^${this.#pick(GIVEN)}^^^DR^^^NPI`,
    );
    this.patients = Array.from({ length: patientCount }, (_, i) => this.#patient(i));
  }

  #pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rand() * list.length)] as T;
  }

  #digits(n: number): string {
    return Array.from({ length: n }, () => Math.floor(this.rand() * 10)).join('');
  }

  #patient(i: number): Patient {
    const rand = this.rand;
    const mrn = `BM${pad(100000 + i * 7, 7)}`;
    const family = this.#pick(FAMILY);
    const given = this.#pick(GIVEN);
    const [city, state, zip] = this.#pick(CITIES);
    const dob = `${1930 + Math.floor(rand() * 90)}${pad(1 + Math.floor(rand() * 12), 2)}${pad(1 + Math.floor(rand() * 28), 2)}`;
    const sex = rand() < 0.5 ? 'F' : 'M';
    const pid =
      `PID|1||${mrn}^^^NWH^MR~${this.#digits(9)}^^^NWH^AN||${family}^${given}^${this.#pick(GIVEN)[0]}^^^^L||${dob}|${sex}||` +
      `2106-3^White^HL70005|${1 + Math.floor(rand() * 9999)} ${this.#pick(STREETS)}^^${city}^${state}^${zip}^USA^H||` +
      `^PRN^PH^^1^555^${this.#digits(7)}|^WPN^PH^^1^555^${this.#digits(7)}|EN^English^HL70296|S^Single^HL70002|||||` +
      `N^Not Hispanic or Latino^HL70189`;
    return { mrn, pid, name: `${family}^${given}` };
  }

  /** `variant` rotates the allergy list (the ingest bench passes its message counter). */
  adtA01(controlId: string, p: Patient, ts: string, variant: number): string {
    const attending = this.#pick(this.#doctors);
    const allergies = Array.from(
      { length: Math.floor(this.rand() * 3) },
      (_, i) => `AL1|${i + 1}|DA|${ALLERGIES[(i + variant) % ALLERGIES.length]}`,
    );
    return [
      `MSH|^~\\&|ADTSYS|NORTHWIND GEN|HL7E|HOSP|${ts}||ADT^A01^ADT_A01|${controlId}|P|2.5.1`,
      `EVN|A01|${ts}|||${this.#pick(this.#doctors)}`,
      p.pid,
      `PD1|||NORTHWIND GENERAL^^1001|${this.#pick(this.#doctors)}`,
      `NK1|1|${this.#pick(FAMILY)}^${this.#pick(GIVEN)}|SPO^Spouse^HL70063||^PRN^PH^^1^555^${this.#digits(7)}||EC^Emergency Contact^HL70131`,
      `PV1|1|I|${this.#pick(UNITS)}^${pad(1 + Math.floor(this.rand() * 40), 2)}^NWH||||${attending}|${this.#pick(this.#doctors)}||MED||||` +
        `7|A0||${attending}|IN|V${this.#digits(8)}^^^NWH^VN|||||||||||||||||||NWH||||||${ts}`,
      `PV2|||${this.#pick(DIAGNOSES)}^I10`,
      ...allergies,
      `DG1|1||${this.#pick(DIAGNOSES)}^I10||${ts}|A`,
      `IN1|1|${this.#pick(PAYERS)}||||G${this.#digits(6)}|SYNTHETIC EMPLOYER|||||||${p.name}|SEL^Self^HL70063|||||||||||||||||||M${this.#digits(9)}`,
    ].join('\r');
  }

  /** A lab result: one OBR (comprehensive metabolic panel) with 2–7 numeric OBX. */
  oruR01(controlId: string, p: Patient, ts: string): string {
    const rand = this.rand;
    const doctor = this.#pick(this.#doctors);
    const placer = `ORD${this.#digits(7)}`;
    const filler = `LAB${this.#digits(7)}`;
    const count = 2 + Math.floor(rand() * 6);
    const start = Math.floor(rand() * (OBSERVATIONS.length - count + 1));
    const obx = OBSERVATIONS.slice(start, start + count).map(([code, name, unit, lo, hi], i) => {
      const value = (lo + (hi - lo) * (rand() * 1.4 - 0.2)).toFixed(1);
      const flag = Number(value) < lo ? 'L' : Number(value) > hi ? 'H' : 'N';
      return `OBX|${i + 1}|NM|${code}^${name}^LN||${value}|${unit}^${unit}^UCUM|${lo}-${hi}|${flag}|||F|||${ts}`;
    });
    return [
      `MSH|^~\\&|LABSYS|NORTHWIND LAB|HL7E|HOSP|${ts}||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
      p.pid,
      `PV1|1|O|LAB^^^NWH||||${doctor}`,
      `ORC|RE|${placer}^EHR|${filler}^LIS||CM||||${ts}|||${doctor}`,
      `OBR|1|${placer}^EHR|${filler}^LIS|24323-8^Comprehensive metabolic panel^LN|||${ts}|||||||${ts}||${doctor}||||||${ts}|||F`,
      ...obx,
    ].join('\r');
  }
}

/** HL7 DTM of now, recomputed at most once per second. */
let tsCache = { at: 0, text: '' };
export function hl7Now(): string {
  const now = Date.now();
  if (now - tsCache.at >= 1000) {
    tsCache = { at: now, text: new Date(now).toISOString().replace(/\D/g, '').slice(0, 14) };
  }
  return tsCache.text;
}

/** MSA-1 and MSA-2 of an ACK. */
export function readAck(ack: Buffer): { code: string; ref: string } {
  const text = ack.toString('latin1');
  const at = text.indexOf('\rMSA|');
  if (at === -1) return { code: 'NO-MSA', ref: '' };
  const end = text.indexOf('\r', at + 1);
  const fields = text.slice(at + 1, end === -1 ? undefined : end).split('|');
  return { code: fields[1] ?? '', ref: fields[2] ?? '' };
}
