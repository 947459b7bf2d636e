import { describeTargets } from './helpers.js';
import { streamManagementSuite } from './suites/stream-management.js';

describeTargets('stream management', streamManagementSuite);
