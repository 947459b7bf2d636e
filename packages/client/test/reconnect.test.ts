import { describeTargets } from './helpers.js';
import { reconnectSuite } from './suites/reconnect.js';

describeTargets('reconnect', reconnectSuite);
