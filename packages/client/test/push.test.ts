import { describeTargets } from './helpers.js';
import { pushSuite } from './suites/push.js';

// Prosody 0.12 ships no XEP-0357 module: there the suite only checks that enable reports the
// missing feature; the notification tests run against Natter.
describeTargets('push', pushSuite);
