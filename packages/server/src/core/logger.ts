import { pino, type Logger as PinoLogger } from 'pino';

/** Structured JSON logs (pino). */
export type Logger = PinoLogger;

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return destination
    ? pino({ level, base: { service: 'natter' } }, destination)
    : pino({ level, base: { service: 'natter' } });
}
