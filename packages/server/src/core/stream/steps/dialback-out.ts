import { xml, type Element } from '@natter/xml';
import { NS } from '@natter/protocol';
import { dialbackKey } from '../../s2s/dialback-key.js';

export const DIALBACK_NS = NS.dialback;
export const DIALBACK_FEATURE_NS = NS.dialbackFeature;

/**
 * What the initiating side of XEP-0220 sends: `<db:result/>` (the originating server asks the
 * receiving one to accept a local domain, §2.1.1) and `<db:verify/>` (the receiving server asks the
 * authoritative one whether a key is genuine, §2.3.1).
 */
export const dialbackOut = {
  /** The key for `local` → `remote` over the peer's stream `peerStreamId` (XEP-0185). */
  result(secret: string, local: string, remote: string, peerStreamId: string): Element {
    return xml(
      'result',
      { xmlns: DIALBACK_NS, from: local, to: remote },
      dialbackKey(secret, remote, local, peerStreamId),
    );
  },

  /** Asks `remote` (authoritative) about the key it gave for its stream `streamId` to us (`local`). */
  verify(req: { local: string; remote: string; streamId: string; key: string }): Element {
    return xml('verify', { xmlns: DIALBACK_NS, from: req.local, to: req.remote, id: req.streamId }, req.key);
  },
};
