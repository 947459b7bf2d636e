/**
 * The administrator's commands (declared in admin/registry.ts, above the core) as a module reaches
 * them: by name, with a plain input object, through `ModuleContext.adminCommands`. The server sets
 * the runner; the module `admin-commands` (XEP-0133) is its user.
 */
export interface AdminCommandRunner {
  /** Validates `input` and runs the command; throws AdminCommandFailed when it is refused. */
  run(id: string, input: Record<string, unknown>, actor: { via: 'xmpp'; by: string }): Promise<unknown>;
}

/** A refused or failed admin command: `status` as the HTTP API would answer (400, 404, 409, 500). */
export class AdminCommandFailed extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
