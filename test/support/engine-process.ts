import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
export const CLI = join(ROOT, 'dist/cli/main.js');

export interface LogEntry {
  msg: string;
  level: number;
  [key: string]: unknown;
}

/**
 * The real daemon (`node dist/cli/main.js start`, as `npm start` runs it) as a child process whose
 * JSON log lines are collected, so tests can wait for `listening`, kill it with any signal, and grep
 * everything it ever wrote.
 */
export class EngineProcess {
  readonly proc: ChildProcess;
  /** Everything written to stdout and stderr, raw. */
  output = '';
  readonly entries: LogEntry[] = [];
  readonly exited: Promise<number | null>;
  #partial = '';

  /** `nodeArgs`: flags for the daemon's node (e.g. --cpu-prof for `bench:ingest --profile`). */
  constructor(channelsDir: string, env: Record<string, string>, nodeArgs: readonly string[] = []) {
    this.proc = spawn(process.execPath, [...nodeArgs, CLI, 'start', '--channels', channelsDir], {
      env: { ...process.env, HL7E_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.proc.stdout?.on('data', (b: Buffer) => this.#take(b.toString()));
    this.proc.stderr?.on('data', (b: Buffer) => {
      this.output += b.toString();
    });
  }

  #take(text: string): void {
    this.output += text;
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('{')) {
        try {
          this.entries.push(JSON.parse(line) as LogEntry);
        } catch {
          // a torn line at a kill
        }
      }
    }
  }

  /** Resolves with the ports of every channel once all have logged `listening`. */
  async listening(channels: string[], timeoutMs = 30_000): Promise<Record<string, number>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ports: Record<string, number> = {};
      for (const e of this.entries) if (e.msg === 'listening') ports[e.channel as string] = e.port as number;
      if (channels.every((c) => ports[c] !== undefined)) return ports;
      if (this.proc.exitCode !== null)
        throw new Error(`engine exited with ${this.proc.exitCode}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`engine did not start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    if (this.proc.exitCode === null) this.proc.kill(signal);
    return this.exited;
  }
}
