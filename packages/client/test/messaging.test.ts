import { describeTargets } from './helpers.js';
import { messagingSuite } from './suites/messaging.js';

describeTargets('messaging', messagingSuite);
