// The servers every suite runs against. CLIENT_TEST_TARGETS selects them (comma-separated;
// default "prosody,natter"; set CLIENT_TEST_TARGETS=prosody to leave the server out).
import { startNatter } from './natter.js';
import { startProsody } from './prosody.js';
import type { Target } from './target.js';

export interface TargetFactory {
  name: string;
  start(): Promise<Target>;
}

const all: TargetFactory[] = [
  { name: 'prosody', start: () => startProsody({ mucModules: ['muc_mam'] }) },
  { name: 'natter', start: () => startNatter() },
];

const wanted = (process.env.CLIENT_TEST_TARGETS ?? 'prosody,natter')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
export const targets: TargetFactory[] = all.filter((t) => wanted.includes(t.name));
if (targets.length === 0)
  throw new Error(
    `CLIENT_TEST_TARGETS=${process.env.CLIENT_TEST_TARGETS}: no known target (known: ${all.map((t) => t.name).join(', ')})`,
  );
