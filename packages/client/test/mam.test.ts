import { describeTargets } from './helpers.js';
import { mamSuite } from './suites/mam.js';

describeTargets('mam', mamSuite);
