import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { defineModule } from '../../core/module-api.js';

/** XEP-0082 time zone offset of this process's local time, e.g. `+02:00` or `-05:30` (`+00:00` in UTC). */
export function timezoneOffset(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${sign}${hh}:${mm}`;
}

/** XEP-0082 DateTime in UTC, with the `Z` designator and no fractional seconds. */
export function utcDateTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Entity Time (XEP-0202): the server's UTC time and time zone offset. */
export default defineModule({
  name: 'time',
  description: 'Answers entity time queries to the server',
  specs: ['XEP-0202', 'XEP-0082'],
  enabledByDefault: true,
  setup(ctx) {
    ctx.iq('host', 'get', NS.time, 'time', () => {
      const now = new Date();
      return xml(
        'time',
        { xmlns: NS.time },
        xml('tzo', null, timezoneOffset(now)),
        xml('utc', null, utcDateTime(now)),
      );
    });
  },
});
