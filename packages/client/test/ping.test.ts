import { describeTargets } from './helpers.js';
import { pingSuite } from './suites/ping.js';

describeTargets('ping and autoPing', pingSuite);
