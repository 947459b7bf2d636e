/** Medians, ratio table, and the JSON / Markdown result files. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Figure } from './scenarios/context.js';
import type { ArchiveMode } from './servers/types.js';

export interface MetricSeries {
  label: string;
  unit: string;
  better: Figure['better'];
  values: number[];
  median: number;
}

export interface ServerResult {
  name: string;
  version: string;
  /** Message archiving of the run (`--archive`); absent in results written before it existed (= off). */
  archive?: ArchiveMode;
  /** What the archive held at the end of the run, e.g. `archived rows: 123 (table archive in …)`. */
  archiveStats?: string;
  tuning: string[];
  skipped?: string;
  /** Scenario errors (a failed scenario does not stop the others). */
  errors: string[];
  metrics: Record<string, MetricSeries>;
}

export interface Results {
  startedAt: string;
  finishedAt: string;
  machine: { cpu: string; cores: number; memGiB: number; node: string };
  options: Record<string, unknown>;
  servers: ServerResult[];
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

export function addFigures(s: ServerResult, figs: Figure[]): void {
  for (const f of figs) {
    const m = (s.metrics[f.key] ??= {
      label: f.label,
      unit: f.unit,
      better: f.better,
      values: [],
      median: NaN,
    });
    m.values.push(f.value);
    m.median = median(m.values);
  }
}

export function machine(): Results['machine'] {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

const ARCHIVE_TEXT: Record<ArchiveMode, string> = {
  off: 'off (no server archives messages)',
  default:
    "ON, each server's default archive storage (Natter: SQLite; ejabberd: Mnesia; Prosody: internal files); every one-to-one chat message archived for sender and recipient",
  pg: 'ON, in PostgreSQL (a fresh database per server); every one-to-one chat message archived for sender and recipient; server CPU includes the PostgreSQL backends serving that database',
};

/** The run's archive mode (`--archive`), in words. */
export function archiveLine(r: Results): string {
  const mode = (r.options['archive'] as ArchiveMode | undefined) ?? 'off';
  return `Message archiving (--archive ${mode}): ${ARCHIVE_TEXT[mode] ?? mode}`;
}

function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '—';
  return (a / b).toFixed(2) + '×';
}

const ARROW: Record<Figure['better'], string> = { higher: '↑', lower: '↓', zero: '=0', info: '' };

/** Rows: every metric seen on any server, in first-seen order. */
function rows(r: Results): { key: string; label: string; unit: string; better: Figure['better'] }[] {
  const seen = new Map<string, { key: string; label: string; unit: string; better: Figure['better'] }>();
  for (const s of r.servers)
    for (const [key, m] of Object.entries(s.metrics))
      if (!seen.has(key)) seen.set(key, { key, label: m.label, unit: m.unit, better: m.better });
  return [...seen.values()];
}

export function table(r: Results): { header: string[]; body: string[][] } {
  const names = r.servers.map((s) => s.name);
  const by = (name: string): ServerResult | undefined => r.servers.find((s) => s.name === name);
  const header = ['metric', 'unit', 'better', ...names, 'natter/prosody', 'natter/ejabberd'];
  if (!names.includes('natter')) header.push('ejabberd/prosody');
  const body = rows(r).map((row) => {
    const med = (n: string): number | undefined => by(n)?.metrics[row.key]?.median;
    const line = [
      row.label,
      row.unit,
      ARROW[row.better],
      ...names.map((n) => fmt(med(n))),
      ratio(med('natter'), med('prosody')),
      ratio(med('natter'), med('ejabberd')),
    ];
    if (!names.includes('natter')) line.push(ratio(med('ejabberd'), med('prosody')));
    return line;
  });
  return { header, body };
}

export function renderText(r: Results): string {
  const { header, body } = table(r);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const archived = r.servers.filter((s) => s.archiveStats).map((s) => `  ${s.name}: ${s.archiveStats}`);
  return [
    archiveLine(r),
    ...archived,
    '',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
  ].join('\n');
}

export function renderMarkdown(r: Results): string {
  const { header, body } = table(r);
  const out: string[] = [];
  out.push(`# Natter benchmark comparison — ${r.startedAt}`, '');
  out.push(
    `Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memGiB} GiB, Node ${r.machine.node}. Server and generator share the machine; all traffic on loopback.`,
    '',
  );
  out.push(`${archiveLine(r)}.`, '');
  out.push(
    `Medians of ${String(r.options['reps'])} repetitions. ↑ higher is better, ↓ lower is better, =0 must be zero. Ratios are medians divided (for ↓ metrics a ratio below 1 is a win).`,
    '',
  );
  out.push(
    '| ' + header.join(' | ') + ' |',
    '|' + header.map((_, i) => (i < 3 ? ' --- ' : ' ---: ')).join('|') + '|',
  );
  for (const b of body) out.push('| ' + b.join(' | ') + ' |');
  out.push('', '## Servers and what was disabled or tuned for the benchmark', '');
  for (const s of r.servers) {
    out.push(`### ${s.name} — ${s.version}`, '');
    if (s.skipped) out.push(`**Skipped:** ${s.skipped}`, '');
    for (const t of s.tuning) out.push(`- ${t}`);
    if (s.archiveStats) out.push(`- at the end of the run: ${s.archiveStats}`);
    if (s.errors.length > 0) {
      out.push('', 'Errors:');
      for (const e of s.errors) out.push(`- ${e}`);
    }
    out.push('');
  }
  out.push('## Options', '', '```json', JSON.stringify(r.options, null, 2), '```', '');
  out.push('## All repetitions', '');
  for (const s of r.servers) {
    out.push(`### ${s.name}`, '');
    for (const [k, m] of Object.entries(s.metrics))
      out.push(`- \`${k}\`: ${m.values.map((v) => fmt(v)).join(', ')} ${m.unit}`);
    out.push('');
  }
  return out.join('\n');
}

export function writeResults(dir: string, r: Results): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const archive = (r.options['archive'] as ArchiveMode | undefined) ?? 'off';
  const stamp = r.startedAt.replace(/[:.]/g, '-') + (archive === 'off' ? '' : `-archive-${archive}`);
  const json = join(dir, `compare-${stamp}.json`);
  const md = join(dir, `compare-${stamp}.md`);
  writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(md, renderMarkdown(r));
  return { json, md };
}
