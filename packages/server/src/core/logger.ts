import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pino, type DestinationStream, type Logger as PinoLogger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from '../config.js';

/** Structured JSON logs (pino). */
export type Logger = PinoLogger;

const BASE: LoggerOptions = { base: { service: 'natter' } };

/** Most log lines a `LogRing` keeps. */
export const LOG_RING_LINES = 500;
/** Longest line a `LogRing` keeps (longer ones are cut, and then no longer JSON). */
const LOG_RING_LINE_CHARS = 8 * 1024;

/**
 * The last log lines (info and above) of one logger, kept in memory for the web console's "recent
 * logs" page: a bounded ring, oldest dropped first. It is a second pino destination beside the
 * real one (`pino.multistream`), so what goes to stdout or the log file is unchanged.
 */
export class LogRing {
  private readonly buffer: string[] = [];
  private next = 0;

  constructor(readonly capacity: number = LOG_RING_LINES) {}

  /** pino's destination interface: one serialised line per call. */
  write(line: string): void {
    const l = line.endsWith('\n') ? line.slice(0, -1) : line;
    const kept = l.length > LOG_RING_LINE_CHARS ? l.slice(0, LOG_RING_LINE_CHARS) : l;
    if (this.buffer.length < this.capacity) this.buffer.push(kept);
    else {
      this.buffer[this.next] = kept;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /** pino's multistream ends every destination when the logger is ended: nothing to release. */
  end(): void {}

  /** The kept lines, oldest first. */
  lines(): string[] {
    return [...this.buffer.slice(this.next), ...this.buffer.slice(0, this.next)];
  }
}

/** The ring of each logger made here (children reach it through their root: see `logRingOf`). */
const rings = new WeakMap<Logger, LogRing>();

/**
 * A pino logger writing to `destination` and, from info up, to a new `LogRing`. The main
 * destination gets every level the logger lets through (multistream's default would be info).
 */
function teed(options: LoggerOptions, destination: DestinationStream): Logger {
  const ring = new LogRing();
  const logger = pino(
    options,
    pino.multistream([
      { level: 'trace', stream: destination },
      { level: 'info', stream: ring },
    ]),
  );
  rings.set(logger, ring);
  return logger;
}

/**
 * The recent lines of a logger made by `createLogger` or `openLogOutput` (pass that logger, not a
 * child); undefined for any other logger (a caller of `startServer` may bring its own).
 */
export function logRingOf(logger: Logger): LogRing | undefined {
  return rings.get(logger);
}

/** A logger writing JSON lines to `destination` (default stdout): tests, and commands other than serve. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return teed(
    { ...BASE, level },
    (destination as DestinationStream | undefined) ?? pino.destination({ fd: 1 }),
  );
}

/** Where `natter serve` sends its log lines, and how its start message may reach a person. */
export interface LogOutput {
  readonly logger: Logger;
  /** How log lines look on stdout: `auto` resolved; `json` too when they go to `file`. */
  readonly format: 'json' | 'pretty';
  /** The log file (absolute), when the lines go there instead of stdout. */
  readonly file: string | undefined;
  /**
   * Whether plain text may go to stdout without breaking a reader of JSON lines: true when stdout
   * is a terminal, when its log lines are pretty, or when they go to a file (stdout then carries
   * none). False only for JSON lines on a pipe or a file: a log shipper's input.
   */
  readonly plainStdout: boolean;
  /** Writes text to stdout, in order with the log lines written there. */
  print(text: string): void;
  /** Reopens the log file by its path (after a rotation); a no-op without one. See `reopenLogFiles`. */
  reopen(): void;
}

/** The log files this process writes, for `reopenLogFiles()`. */
const openFiles = new Map<string, ReturnType<typeof pino.destination>>();

/**
 * Reopens every log file this process writes (`log.file`), by path: after a rotation (logrotate
 * renamed the file), the next lines go to a new file at the configured path, created with mode
 * 0640; lines logged meanwhile are kept and written there. Meant for a SIGHUP handler; a no-op
 * when logs go to stdout. Throws, naming the file, when it cannot be created (the old descriptor
 * then stays in use): a handler should catch and log that. Process-wide, like the files: with
 * `--workers`, each process holds its own descriptor, so the primary should forward the signal to
 * the workers (or each worker get it) besides reopening its own.
 */
export function reopenLogFiles(): void {
  for (const [path, dest] of openFiles) reopenFile(path, dest);
}

function reopenFile(path: string, dest: ReturnType<typeof pino.destination>): void {
  ensureLogFile(path);
  dest.reopen();
}

/**
 * Creates the file (and its directory) if need be, with mode 0640 whatever the umask, and checks
 * that this process can append to it, so that a wrong path or permission stops the start with an
 * error naming the file instead of failing later in the background. An existing file keeps the
 * mode it has (the operator's, or logrotate's `create` directive).
 */
function ensureLogFile(path: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    let fd: number;
    try {
      fd = openSync(path, 'ax', 0o640);
      try {
        fchmodSync(fd, 0o640); // a umask such as 077 narrowed it
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      fd = openSync(path, 'a');
    }
    closeSync(fd);
  } catch (err) {
    throw new Error(`cannot write the log file ${path} (log.file): ${(err as Error).message}`);
  }
}

/**
 * The logger of `natter serve` from the `log` block: JSON lines or pretty lines on stdout, or
 * JSON lines appended to `log.file`. `isTTY` is whether stdout is a terminal (for `auto`).
 *
 * Pretty lines are formatted in this thread by pino-pretty's stream (`pino(opts, pretty(…))`),
 * written synchronously to stdout, rather than by a `pino.transport` worker thread: a line logged
 * just before a crash or `process.exit()` is on the terminal before the process ends (a worker
 * thread may not have written it yet), lines and the start message appear in the order they were
 * written, and tests reading stdout see each line as soon as it is logged. Pretty output is for
 * a person at a terminal, where the cost of formatting in the main thread does not matter.
 */
export function openLogOutput(
  config: Config['log'],
  isTTY: boolean = process.stdout.isTTY === true,
): LogOutput {
  const options: LoggerOptions = { ...BASE, level: config.level };
  if (config.file !== undefined) {
    const file = resolve(config.file);
    ensureLogFile(file);
    // Asynchronous writes, flushed synchronously when the process exits (pino's exit handler).
    const dest = pino.destination({ dest: file, append: true, mkdir: true, mode: 0o640 });
    openFiles.set(file, dest);
    const stdout = pino.destination({ fd: 1, sync: true });
    return {
      logger: teed(options, dest),
      format: 'json',
      file,
      plainStdout: true,
      print: (text) => void stdout.write(text),
      reopen: () => reopenFile(file, dest),
    };
  }
  const format = config.format === 'auto' ? (isTTY ? 'pretty' : 'json') : config.format;
  if (format === 'pretty') {
    const stdout = pino.destination({ fd: 1, sync: true });
    const stream = pretty({
      destination: stdout,
      sync: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'service,pid,hostname',
      singleLine: true,
    }) as DestinationStream;
    return {
      logger: teed(options, stream),
      format,
      file: undefined,
      plainStdout: true,
      print: (text) => void stdout.write(text),
      reopen: () => undefined,
    };
  }
  // JSON lines as before this option existed: pino's asynchronous stdout, flushed at exit.
  const stdout = pino.destination({ fd: 1 });
  return {
    logger: teed(options, stdout),
    format,
    file: undefined,
    plainStdout: isTTY,
    print: (text) => void stdout.write(text),
    reopen: () => undefined,
  };
}
