/**
 * CPU accounting from /proc for the benchmarks: per process (the daemon, the Postgres cluster, Redis,
 * any extra process the benchmark names), this load generator (process.cpuUsage()), and the whole
 * machine with its interrupt + softirq time (loopback TCP is largely processed there) and "other"
 * = machine busy − all of these, with the busiest other processes named (the machine may be shared).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fmt } from './report-format.js';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat after the `(comm)` field: [0] is field 3 (state). */
export function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

interface Proc {
  readonly comm: string;
  readonly ppid: number;
  /** utime + stime (fields 14, 15), ticks. */
  readonly ticks: number;
  /** cutime + cstime (fields 16, 17): reaped children, ticks. */
  readonly childTicks: number;
}

/** Every process on the machine, from /proc/<pid>/stat. */
function scanProcs(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' ');
    out.set(Number(name), {
      comm: text.slice(text.indexOf('(') + 1, close),
      ppid: Number(f[1]),
      ticks: Number(f[11]) + Number(f[12]),
      childTicks: Number(f[13]) + Number(f[14]),
    });
  }
  return out;
}

interface MachineCpu {
  busy: number;
  iowait: number;
  irq: number;
  steal: number;
  total: number;
}
function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: total - idle - iowait, iowait, irq: irq + softirq, steal, total };
}

export interface CpuSnapshot {
  at: number;
  procs: Map<number, Proc>;
  self: NodeJS.CpuUsage;
  machine: MachineCpu;
}

export function cpuSnapshot(): CpuSnapshot {
  return { at: performance.now(), procs: scanProcs(), self: process.cpuUsage(), machine: machineCpu() };
}

export interface CpuReport {
  /** % of one core over the window. */
  daemon: number;
  postgres: number;
  redis: number;
  generator: number;
  /** Per name of Roles.extra, % of one core. */
  extra: Record<string, number>;
  /** Interrupt and softirq time (loopback TCP is largely processed here), not charged to any process. */
  irq: number;
  /** Machine busy − all of the above: other processes on the machine. */
  other: number;
  /** The busiest other processes, e.g. `node 40%, postgres 12%`. */
  top: string;
  /** % of one core summed over all cores (max 100 × cores). */
  machineBusy: number;
  iowait: number;
  steal: number;
}

/** Which processes are whose: the daemon, the Postgres cluster (postmaster and children), Redis, others. */
export interface Roles {
  daemon: number;
  postmaster: number | undefined;
  redis: number | undefined;
  /** Further processes of the benchmark by name (e.g. a FHIR endpoint child), counted apart. */
  extra?: Readonly<Record<string, number>>;
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot, roles: Roles): CpuReport {
  const secs = (b.at - a.at) / 1000;
  const pct = (ticks: number) => (ticks / CLK_TCK / secs) * 100;
  // A process born inside the window is counted whole; one that died inside it is lost (reaped children
  // of the postmaster are caught through its cutime/cstime).
  const delta = (pid: number, p: Proc) => p.ticks - (a.procs.get(pid)?.ticks ?? 0);
  const extraByPid = new Map(Object.entries(roles.extra ?? {}).map(([name, pid]) => [pid, name]));
  let daemon = 0;
  let postgres = 0;
  let redis = 0;
  const extraTicks: Record<string, number> = {};
  const others = new Map<string, number>();
  for (const [pid, p] of b.procs) {
    if (pid === process.pid) continue;
    const d = delta(pid, p);
    const extra = extraByPid.get(pid);
    if (pid === roles.daemon) daemon += d;
    else if (pid === roles.redis) redis += d;
    else if (extra !== undefined) extraTicks[extra] = (extraTicks[extra] ?? 0) + d;
    else if (pid === roles.postmaster) {
      postgres += d + p.childTicks - (a.procs.get(pid)?.childTicks ?? 0);
    } else if (roles.postmaster !== undefined && p.ppid === roles.postmaster) postgres += d;
    else if (d > 0) others.set(p.comm, (others.get(p.comm) ?? 0) + d);
  }
  const self = b.self.user + b.self.system - a.self.user - a.self.system;
  const generator = (self / 1e6 / secs) * 100;
  const extra = Object.fromEntries(Object.entries(extraTicks).map(([k, t]) => [k, pct(t)]));
  const extraSum = Object.values(extra).reduce((s, x) => s + x, 0);
  // Machine counters: fractions of total time across all cores, expressed in %-of-one-core units.
  const total = b.machine.total - a.machine.total;
  const share = (x: number) => (total > 0 ? (x / total) * 100 * cpus().length : Number.NaN);
  const machineBusy = share(b.machine.busy - a.machine.busy);
  const irq = share(b.machine.irq - a.machine.irq);
  const top = [...others]
    .sort((x, y) => y[1] - x[1])
    .slice(0, 3)
    .filter(([, t]) => pct(t) >= 1)
    .map(([comm, t]) => `${comm} ${fmt(pct(t))}%`)
    .join(', ');
  return {
    daemon: pct(daemon),
    postgres: pct(postgres),
    redis: pct(redis),
    generator,
    extra,
    irq,
    other: machineBusy - pct(daemon) - pct(postgres) - pct(redis) - generator - extraSum - irq,
    top,
    machineBusy,
    iowait: share(b.machine.iowait - a.machine.iowait),
    steal: share(b.machine.steal - a.machine.steal),
  };
}
