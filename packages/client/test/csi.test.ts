import { describeTargets } from './helpers.js';
import { csiSuite } from './suites/csi.js';

describeTargets('csi', csiSuite);
