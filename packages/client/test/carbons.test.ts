import { describeTargets } from './helpers.js';
import { carbonsSuite } from './suites/carbons.js';

describeTargets('carbons', carbonsSuite);
