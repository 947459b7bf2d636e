import { describeTargets } from './helpers.js';
import { rosterSuite } from './suites/roster.js';

describeTargets('roster', rosterSuite);
