import { describeTargets } from './helpers.js';
import { blockingSuite } from './suites/blocking.js';

describeTargets('blocking', blockingSuite);
