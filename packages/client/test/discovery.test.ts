// Service discovery, capabilities and publish-subscribe.
import { describeTargets } from './helpers.js';
import { discoSuite } from './suites/disco.js';
import { pubsubSuite } from './suites/pubsub.js';

describeTargets('disco and caps', discoSuite);
describeTargets('pubsub', pubsubSuite);
