import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, LOG_RING_LINES, logRingOf, openLogOutput, reopenLogFiles } from './logger.js';

const dir = mkdtempSync(join(tmpdir(), 'natter-logger-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Waits until `file` holds a line with `msg` (the file is written asynchronously). */
async function lineIn(file: string, msg: string): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    let lines: Record<string, unknown>[] = [];
    try {
      lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not there yet
    }
    if (lines.some((l) => l.msg === msg)) return lines;
    if (Date.now() > deadline) throw new Error(`no "${msg}" line in ${file}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('log output (the log block)', () => {
  test('auto is pretty at a terminal and JSON elsewhere; plain text goes to stdout unless it carries JSON lines for a pipe', () => {
    const out = (format: 'auto' | 'json' | 'pretty', tty: boolean) => {
      const o = openLogOutput({ level: 'silent', format }, tty);
      return [o.format, o.plainStdout];
    };
    assert.deepEqual(out('auto', true), ['pretty', true]);
    assert.deepEqual(out('auto', false), ['json', false]);
    assert.deepEqual(out('json', true), ['json', true]);
    assert.deepEqual(out('json', false), ['json', false]);
    assert.deepEqual(out('pretty', false), ['pretty', true]);
  });

  test('log.file: JSON lines in a new file of mode 0640 whatever the format; reopenLogFiles() follows a rotation', async () => {
    const file = join(dir, 'a', 'b', 'natter.log');
    const o = openLogOutput({ level: 'info', format: 'pretty', file }, true);
    assert.equal(o.format, 'json');
    assert.equal(o.file, file);
    assert.equal(o.plainStdout, true);
    assert.equal(statSync(file).mode & 0o777, 0o640);
    o.logger.info({ n: 1 }, 'before rotation');
    await lineIn(file, 'before rotation');
    // logrotate without copytruncate: rename, then signal the process to reopen.
    renameSync(file, `${file}.1`);
    reopenLogFiles();
    o.logger.info({ n: 2 }, 'after rotation');
    const lines = await lineIn(file, 'after rotation');
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['after rotation'],
    );
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.deepEqual(
      (await lineIn(`${file}.1`, 'before rotation')).map((l) => l.msg),
      ['before rotation'],
    );
  });

  test('a log file that cannot be written stops the start with an error naming it', () => {
    const notADirectory = join(dir, 'plain-file');
    writeFileSync(notADirectory, '');
    const file = join(notADirectory, 'x.log');
    assert.throws(
      () => openLogOutput({ level: 'info', format: 'auto', file }, false),
      (err: Error) => err.message.startsWith(`cannot write the log file ${file} (log.file): `),
    );
  });
});

describe("the recent log lines (LogRing, the web console's recent logs)", () => {
  test('keeps the last lines at info and above, oldest first, bounded; the main destination still gets everything', () => {
    const main: string[] = [];
    const log = createLogger('debug', {
      write: (s: string) => void main.push(s),
    } as unknown as NodeJS.WritableStream);
    const ring = logRingOf(log);
    assert.ok(ring);
    log.debug('below info');
    for (let i = 0; i < LOG_RING_LINES + 5; i++) log.info({ i }, 'line');
    log.child({ host: 'example.com' }).warn('from a child');
    const lines = ring.lines().map((l) => JSON.parse(l) as { msg: string; i?: number; host?: string });
    assert.equal(lines.length, LOG_RING_LINES);
    assert.equal(lines[0]!.i, 6, 'the oldest were dropped');
    assert.equal(lines.at(-1)!.msg, 'from a child');
    assert.equal(lines.at(-1)!.host, 'example.com');
    assert.ok(!lines.some((l) => l.msg === 'below info'));
    assert.ok(
      main.some((l) => l.includes('below info')),
      'debug still reaches the main destination',
    );
    assert.equal(main.length, LOG_RING_LINES + 7);
  });

  test('a child logger has no ring of its own (pass the root), nor has a logger made elsewhere', () => {
    assert.equal(logRingOf(createLogger('info').child({})), undefined);
  });
});
