// @natter/component/testing: an in-process Natter for a gateway's tests.
export { startHarness, type Harness, type HarnessOptions } from './harness.js';
