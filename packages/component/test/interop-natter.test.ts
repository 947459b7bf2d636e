// @natter/component against Natter (in-process): see interop-suite.ts.
import { interopSuite } from './interop-suite.js';
import { targets } from './targets.js';

interopSuite(targets.find((t) => t.name === 'natter')!);
