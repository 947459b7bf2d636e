import { gatewaySuite } from './gateway-suite.js';

gatewaySuite('natter');
