import { NATTER_VERSION } from '../version.js';
import type { AdminRoute } from '../listeners/admin-listener.js';
import { ADMIN_COMMANDS } from './commands.js';
import { coerceInput, openApiDocument, runCommand } from './registry.js';

/**
 * The commands of the registry as the HTTP API of the admin listener: `GET` ones take their input
 * from the query string, `POST` ones from a JSON body; `GET /api/openapi.json` describes them all.
 */
export const apiRoutes: AdminRoute[] = [
  ...ADMIN_COMMANDS.map((command): AdminRoute => ({
    method: command.http.method,
    path: command.http.path,
    handle: ({ core, query, body, address }) =>
      runCommand(
        core,
        command,
        command.http.method === 'GET' ? coerceInput(command, Object.fromEntries(query)) : body,
        { via: 'api', by: address },
      ),
  })),
  {
    method: 'GET',
    path: '/api/openapi.json',
    handle: () => openApiDocument(ADMIN_COMMANDS, NATTER_VERSION),
  },
];
