/**
 * What the last module shares with its peers (rule 5): the RFC 6121 presence-subscription check
 * that XEP-0012 and blocking (XEP-0191) both apply before revealing anything about an account.
 */
export { mayReceivePresence } from './roster-subscription.js';
