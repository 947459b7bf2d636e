// Receipts, vCards and avatars: what one contact sees of another.
import { describeTargets } from './helpers.js';
import { avatarSuite } from './suites/avatar.js';
import { receiptsSuite } from './suites/receipts.js';
import { vcardSuite } from './suites/vcard.js';

describeTargets('receipts', receiptsSuite);
describeTargets('vcard', vcardSuite);
describeTargets('avatar', avatarSuite);
