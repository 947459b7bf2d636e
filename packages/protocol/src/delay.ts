import { Element, xml } from '@natter/xml';
import { NS } from './namespaces.js';

/** XEP-0082 date-time with millisecond precision, UTC. */
export function dateTime(date: Date): string {
  return date.toISOString();
}

/** XEP-0082 date-time parser; undefined when the input is not a valid date-time. */
export function parseDateTime(text: string | undefined): Date | undefined {
  if (!text) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text.trim())) return undefined;
  const d = new Date(text.trim());
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** XEP-0203 delayed delivery element. */
export function delayElement(stamp: Date, from?: string, reason?: string): Element {
  return xml('delay', { xmlns: NS.delay, stamp: dateTime(stamp), from }, reason);
}
