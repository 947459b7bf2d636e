// Natter federating with a real Prosody 0.12 (Debian's package, installed on demand): chat both ways,
// an error bounced back, a ping to the server, and a mutual presence subscription; once with
// dialback (self-signed certificates), once with SASL EXTERNAL (certificates from a test CA). See
// support/federation-peers.ts for how each side finds the other without DNS.
import { startProsodyPeer } from '../support/federation-peers.js';
import { federationSuite } from './federation-suite.js';

federationSuite('Prosody', startProsodyPeer, 'prosody.test', { auth: 'dialback' });
federationSuite('Prosody', startProsodyPeer, 'prosody.test', { auth: 'external' });
