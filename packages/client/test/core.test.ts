import { describeTargets } from './helpers.js';
import { coreSuite } from './suites/core.js';

describeTargets('core connection', coreSuite);
