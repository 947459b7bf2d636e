// Natter federating with a real ejabberd 23.01 (Debian's package, installed on demand): chat both
// ways, an error bounced back, a ping to the server, a mutual presence subscription, vCards both
// ways, a room on each side's MUC service, and a bounce for a domain that does not exist; once with
// SASL EXTERNAL (certificates from a test CA), once with dialback (self-signed certificates). See
// support/federation-peers.ts for how each side finds the other without DNS. ejabberd knows the
// dialback elements only by their db: prefix: this is what caught Natter writing them with a
// default namespace declaration instead.
import { startEjabberdPeer } from '../support/federation-peers.js';
import { federationSuite } from './federation-suite.js';

federationSuite('ejabberd', startEjabberdPeer, 'ejabberd.test', { auth: 'external' });
federationSuite('ejabberd', startEjabberdPeer, 'ejabberd.test', { auth: 'dialback' });
