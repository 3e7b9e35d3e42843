import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from '../../src/hl7/index.js';

// The real daemon process (the built CLI, as `npm start` runs it) on ephemeral ports, driven by the real
// `hl7e send` process and by raw sockets for what no well-behaved sender does.
const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const FIXTURES = join(ROOT, 'test/fixtures');
const run = promisify(execFile);

interface Listening {
  channel: string;
  port: number;
}

let daemon: ChildProcess;
let dir: string;
let logs = '';
const ports: Record<string, number> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hl7e-e2e-'));
  writeFileSync(
    join(dir, 'adt.yaml'),
    'name: adt\nsource:\n  mllp:\n    port: 0\n    maxMessageBytes: 4096\naccept: [ADT^A*]\n',
  );
  writeFileSync(join(dir, 'lab.yaml'), 'name: lab\nsource:\n  mllp:\n    port: 0\nack:\n  mode: enhanced\n');
  daemon = spawn(process.execPath, [CLI, 'start', '--channels', dir], {
    env: {
      ...process.env,
      HL7E_DATA_DIR: join(dir, 'data'),
      HL7E_ARCHIVE_DIR: join(dir, 'archive'),
      HL7E_QUEUE_PREFIX: `e2e-${process.pid}`,
      HL7E_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stderr!.on('data', (b: Buffer) => {
    logs += b.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${logs}`)), 20_000);
    daemon.stdout!.on('data', (b: Buffer) => {
      logs += b.toString();
      for (const line of logs.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg: string } & Listening;
        if (entry.msg === 'listening') ports[entry.channel] = entry.port;
      }
      if (ports.adt && ports.lab) {
        clearTimeout(timer);
        resolve();
      }
    });
    daemon.once('exit', (code) => reject(new Error(`daemon exited with ${code}:\n${logs}`)));
  });
});

afterAll(async () => {
  if (daemon.exitCode === null) {
    daemon.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes on a fresh connection and collects what comes back until `frames` ACKs or close. */
function exchange(port: number, bytes: Buffer, frames = 1): Promise<{ acks: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const acks: string[] = [];
    const done = (closed: boolean) => {
      socket.destroy();
      resolve({ acks, closed });
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      let end = received.indexOf(0x1c);
      while (end !== -1) {
        acks.push(received.subarray(received.indexOf(0x0b) + 1, end).toString('utf8'));
        received = received.subarray(end + 2);
        end = received.indexOf(0x1c);
      }
      if (acks.length >= frames) done(false);
    });
    socket.on('close', () => done(true));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

const frame = (s: string) =>
  Buffer.concat([Buffer.from([0x0b]), Buffer.from(s, 'utf8'), Buffer.from([0x1c, 0x0d])]);

describe('daemon end to end', () => {
  it('answers `hl7e send` with the right ACK for every message, over one connection', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      'send',
      join(FIXTURES, 'adt-a01.hl7'),
      join(FIXTURES, 'oru-r01.hl7'),
      '--host',
      '127.0.0.1',
      '--port',
      String(ports.adt),
    ]).catch((e: { stdout: string; code: number }) => ({ stdout: e.stdout, code: e.code }));
    const lines = stdout.trim().split('\n');
    // ADT with MSH-15=AL, MSH-16=NE → enhanced mode commit accept; ORU is not accepted by this channel.
    expect(lines[0]).toMatch(/adt-a01\.hl7#1 {2}CA {2}ADT00001$/);
    expect(lines[1]).toMatch(/oru-r01\.hl7#1 {2}AR {2}LAB00042$/);
  });

  it('rejects a message type the channel does not accept with ERR 200', async () => {
    const oru = readFileSync(join(FIXTURES, 'oru-r01.hl7'), 'utf8').replace(/\n/g, '\r');
    const { acks } = await exchange(ports.adt!, frame(oru));
    const ack = parse(acks[0]!);
    expect(ack.get('MSA-1')).toBe('AR');
    expect(ack.get('MSA-2')).toBe('LAB00042');
    expect(ack.get('ERR-3-1')).toBe('200');
  });

  it('answers garbage inside a frame with AR and an ERR, and keeps the connection', async () => {
    const adt = readFileSync(join(FIXTURES, 'adt-a01.hl7'), 'utf8');
    const { acks, closed } = await exchange(
      ports.lab!,
      Buffer.concat([Buffer.from('noise before VT'), frame('this is not HL7 at all'), frame(adt)]),
      2,
    );
    expect(closed).toBe(false);
    expect(parse(acks[0]!).get('MSA-1')).toBe('CR'); // the lab channel is configured enhanced
    expect(parse(acks[0]!).get('ERR-3-1')).toBe('100');
    expect(parse(acks[1]!).get('MSA-1')).toBe('CA');
    expect(parse(acks[1]!).get('MSA-2')).toBe('ADT00001');
  });

  it('NAKs a frame over the size limit when MSH is readable, then closes the connection', async () => {
    const adt = readFileSync(join(FIXTURES, 'adt-a01.hl7'), 'utf8');
    const big = `${adt}NTE|1||${'x'.repeat(8000)}\r`;
    const { acks, closed } = await exchange(ports.adt!, frame(big), 2);
    expect(closed).toBe(true);
    expect(acks).toHaveLength(1);
    const ack = parse(acks[0]!);
    expect(ack.get('MSA-1')).toBe('CR');
    expect(ack.get('MSA-2')).toBe('ADT00001');
    expect(ack.get('ERR-5')).toBe('MLLP_FRAME_TOO_LARGE');
  });

  it('parses with `hl7e parse`', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      'parse',
      join(FIXTURES, 'adt-a01.hl7'),
      '--path',
      'PID-3(2)-1',
    ]);
    expect(stdout).toBe('999-12-3456\n');
    const json = JSON.parse(
      (await run(process.execPath, [CLI, 'parse', join(FIXTURES, 'oru-r01.hl7')])).stdout,
    ) as {
      segments: Array<{ segment: string; fields: Record<string, unknown> }>;
    };
    expect(json.segments.map((s) => s.segment)).toEqual(['MSH', 'PID', 'OBR', 'OBX', 'OBX', 'NTE']);
    expect(json.segments[5]!.fields['3']).toBe('Fasting sample\nCollected by nurse station 3');
  });

  it('logs ids and codes, never message content', () => {
    expect(logs).toContain('"msg":"message not accepted"');
    for (const phi of [
      'Everyman',
      'Adam',
      '19610615',
      '100234',
      '999-12-3456',
      'Home Street',
      'Glucose',
      'Fasting',
    ]) {
      expect(logs).not.toContain(phi);
    }
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    daemon.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(logs).toContain('"msg":"hl7e stopped"');
  });
});
