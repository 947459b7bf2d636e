// Natter federating with a real Prosody 0.12 (Debian's package, installed on demand): chat both ways,
// an error bounced back, a ping to the server, a mutual presence subscription, vCards both ways, a
// room on each side's MUC service, and a bounce for a domain that does not exist; once with
// dialback (self-signed certificates), once with SASL EXTERNAL (certificates from a test CA). See
// support/federation-peers.ts for how each side finds the other without DNS.
import { startProsodyPeer } from '../support/federation-peers.js';
import { federationSuite } from './federation-suite.js';

federationSuite('Prosody', startProsodyPeer, 'prosody.test', { auth: 'dialback' });
// Prosody 0.12 sends no SNI on STARTTLS s2s: Natter picks its certificate by the stream's `to`
// (conference.natter.test has its own in tls.certificates), which this case checks.
federationSuite('Prosody', startProsodyPeer, 'prosody.test', { auth: 'external' });
