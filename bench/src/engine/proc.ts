/**
 * CPU time and resident memory of a process tree, read from /proc (Linux). The server's figures are
 * summed over the started PID and all its descendants, so wrapper shells and Erlang's helper
 * processes are counted with the VM. Processes outside the tree that work for the server (the
 * PostgreSQL backends serving its archive, `--archive pg`) can be added to its CPU: see `ExtraCpu`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let tck = 100;
try {
  tck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
} catch {
  /* Linux default */
}

interface Stat {
  pid: number;
  ppid: number;
  cpuTicks: number;
  /** Start time (clock ticks after boot): tells a reused PID from the process that had it. */
  start: number;
}

function readStat(pid: number): Stat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, starttime 22.
    return {
      pid,
      ppid: Number(rest[1]),
      cpuTicks: Number(rest[11]) + Number(rest[12]),
      start: Number(rest[19]),
    };
  } catch {
    return null;
  }
}

/** The PID and all its living descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) todo.push(c);
  }
  return out;
}

/** CPU seconds (user + system) consumed so far by the tree. */
export function treeCpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const p of pids) ticks += readStat(p)?.cpuTicks ?? 0;
  return ticks / tck;
}

/** Resident set size of the tree, in bytes. */
export function treeRssBytes(pids: number[]): number {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      /* exited */
    }
  }
  return kb * 1024;
}

/**
 * Processes outside the server's tree whose CPU is billed to the server, e.g. the PostgreSQL backends
 * serving the run's database. `pids()` lists them at the moment of the call.
 */
export interface ExtraCpu {
  /** What the processes are, for notes (e.g. "PostgreSQL backends of database natter_bench_…"). */
  label: string;
  pids(): Promise<number[]>;
}

/**
 * CPU of processes that come and go (PostgreSQL backends), as a counter that only grows: each sample
 * adds, for every process listed, what it used since the previous sample (since it started, for a
 * process seen for the first time, so a backend that appears during a phase is counted from 0).
 * A process that exits between two samples loses what it used since the last one.
 */
export class ExtraCpuCounter {
  private readonly seen = new Map<string, number>();
  private ticks = 0;

  constructor(readonly source: ExtraCpu) {}

  /** CPU seconds accumulated up to now. */
  async sample(): Promise<number> {
    const pids = await this.source.pids();
    const alive = new Set<string>();
    for (const pid of pids) {
      const st = readStat(pid);
      if (!st) continue;
      const key = `${pid}:${st.start}`;
      alive.add(key);
      this.ticks += Math.max(0, st.cpuTicks - (this.seen.get(key) ?? 0));
      this.seen.set(key, st.cpuTicks);
    }
    for (const key of this.seen.keys()) if (!alive.has(key)) this.seen.delete(key);
    return this.ticks / tck;
  }
}

/** Samples of one server process tree (the tree is re-read on each call: Erlang may spawn helpers). */
export class ProcWatch {
  private readonly extra: ExtraCpuCounter | undefined;

  /** `extra`: processes outside the tree whose CPU is added to the server's (see `ExtraCpu`). */
  constructor(
    readonly pid: number,
    extra?: ExtraCpu,
  ) {
    this.extra = extra ? new ExtraCpuCounter(extra) : undefined;
  }

  /**
   * CPU seconds used by the server so far: its process tree, plus the extra processes' CPU as
   * accumulated by `ExtraCpuCounter`. Only differences between two calls are meaningful.
   */
  async cpu(): Promise<number> {
    return (await this.cpuParts()).total;
  }

  /** `cpu()`, and the part of it used by the extra processes (0 without any). */
  async cpuParts(): Promise<{ total: number; extra: number }> {
    if (this.pid <= 0) return { total: NaN, extra: NaN };
    const extra = this.extra ? await this.extra.sample() : 0;
    return { total: treeCpuSeconds(processTree(this.pid)) + extra, extra };
  }

  /** What the extra processes are (`ExtraCpu.label`), if any. */
  get extraLabel(): string | undefined {
    return this.extra?.source.label;
  }

  rss(): number {
    if (this.pid <= 0) return NaN;
    return treeRssBytes(processTree(this.pid));
  }
}
