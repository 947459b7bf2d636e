// Who may use the gateway, and which topics.
import type { Jid } from '@natter/component';
import { filterProblem, isWildcard } from './topic-address.js';

export class Policy {
  private readonly everyone: boolean;
  private readonly allowed: Set<string>;

  constructor(
    allowedUsers: readonly string[],
    private readonly prefixes: readonly string[],
    private readonly wildcards: boolean,
  ) {
    this.everyone = allowedUsers.includes('*');
    this.allowed = new Set(allowedUsers);
  }

  /** Whether a user (any resource) may use the gateway: their bare JID or their domain is listed. */
  userAllowed(user: Jid): boolean {
    return this.everyone || this.allowed.has(user.toBareString()) || this.allowed.has(user.domain);
  }

  /** Why a topic filter is refused, or undefined when it is allowed. */
  topicRefusal(filter: string): string | undefined {
    const problem = filterProblem(filter);
    if (problem) return problem;
    if (!this.wildcards && isWildcard(filter))
      return 'wildcard subscriptions are not allowed on this gateway';
    const ok = this.prefixes.some((p) => filter.startsWith(p) && (p !== '' || !filter.startsWith('$')));
    return ok ? undefined : 'this topic is not allowed on this gateway';
  }

  /**
   * Whether a message received on `topic` may be forwarded. `a/#` also matches `a` itself (MQTT
   * §4.7.1.2), which a prefix `a/` does not allow: this check keeps such messages out.
   */
  topicAllowed(topic: string): boolean {
    return this.prefixes.some((p) => topic.startsWith(p) && (p !== '' || !topic.startsWith('$')));
  }
}
