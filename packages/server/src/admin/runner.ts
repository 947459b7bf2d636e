import { AdminCommandFailed, type AdminCommandRunner } from '../core/admin-commands.js';
import type { ServerCore } from '../core/server-core.js';
import { AdminActionError } from './actions.js';
import { adminCommand } from './commands.js';
import { runCommand } from './registry.js';

/** The registry as modules reach it (`ctx.adminCommands`, for XEP-0133): errors as AdminCommandFailed. */
export function adminCommandRunner(core: ServerCore): AdminCommandRunner {
  return {
    async run(id, input, actor) {
      const command = adminCommand(id);
      if (!command) throw new AdminCommandFailed(500, `no admin command ${id}`);
      try {
        return await runCommand(core, command, input, actor);
      } catch (err) {
        if (err instanceof AdminActionError) throw new AdminCommandFailed(err.status, err.message);
        throw err;
      }
    },
  };
}
