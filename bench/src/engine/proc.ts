/**
 * CPU time and resident memory of a process tree, read from /proc (Linux). The server's figures are
 * summed over the started PID and all its descendants, so wrapper shells and Erlang's helper
 * processes are counted with the VM.
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
}

function readStat(pid: number): Stat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { pid, ppid: Number(rest[1]), cpuTicks: Number(rest[11]) + Number(rest[12]) };
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

/** Samples of one server process tree (the tree is re-read on each call: Erlang may spawn helpers). */
export class ProcWatch {
  constructor(readonly pid: number) {}
  cpu(): number {
    if (this.pid <= 0) return NaN;
    return treeCpuSeconds(processTree(this.pid));
  }
  rss(): number {
    if (this.pid <= 0) return NaN;
    return treeRssBytes(processTree(this.pid));
  }
}
