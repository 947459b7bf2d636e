import { describeTargets } from './helpers.js';
import { mucSuite } from './suites/muc.js';

describeTargets('muc', mucSuite);
