import { z } from 'zod';
import type { ServerCore } from '../core/server-core.js';
import { AdminActionError } from './actions.js';

/**
 * The administrator's commands, declared once and served three ways: the command line (`natter
 * user disable …`), the HTTP API of the admin listener (`POST /api/users/disable`, described by
 * `/api/openapi.json`) and XMPP ad-hoc commands for the accounts in `admins` (XEP-0133, module
 * `admin-commands`). A command is its input and output schemas (zod: validation, the CLI's options,
 * the OpenAPI document) and one `run`; each surface only translates. See docs/administration.md.
 */

/** Who runs a command, for the audit log line every change writes. */
export interface CommandActor {
  via: 'cli' | 'api' | 'xmpp' | 'console';
  /** The admin's JID (XMPP, web console) or the client's address (HTTP API). */
  by?: string;
}

export interface AdminCommand<I extends z.ZodObject = z.ZodObject, O extends z.ZodType = z.ZodType> {
  /** Dotted name, e.g. `user.disable`: the OpenAPI operationId and the audit log's `command`. */
  id: string;
  summary: string;
  description?: string;
  /** Changes something: never a GET, and each run is logged with its actor. */
  mutates: boolean;
  /**
   * On the command line: the words after `natter`, the input field the next positional argument
   * fills, and the field read at a terminal without echo (typed twice) when no option gives it.
   */
  cli: { words: readonly [string, string]; positional?: string; secret?: string };
  /** Under `/api/` on the admin listener. GET takes the input from the query, POST from a JSON body. */
  http: { method: 'GET' | 'POST'; path: string };
  input: I;
  output: O;
  run(core: ServerCore, input: z.output<I>, actor: CommandActor): Promise<z.input<O>>;
  /** What the CLI prints (without `--json`). */
  text?(out: z.output<O>): string;
}

/** Declares a command with its types inferred from the schemas. */
export function defineCommand<I extends z.ZodObject, O extends z.ZodType>(
  c: AdminCommand<I, O>,
): AdminCommand<I, O> {
  return c;
}

/** Input fields whose values are never logged. */
const SECRET_FIELDS = new Set(['password']);

/** The input as the audit log shows it: secrets replaced. */
function redacted(input: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(input).map(([k, v]) => [k, SECRET_FIELDS.has(k) ? '(redacted)' : v]),
  );
}

/** "jid: Invalid input" lines from a zod error, naming each field. */
export function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
}

/**
 * Validates `raw` against the command's input and runs it: a bad input is a 400 naming the field;
 * a change is logged with who asked (the audit trail), secrets left out.
 */
export async function runCommand(
  core: ServerCore,
  command: AdminCommand,
  raw: unknown,
  actor: CommandActor,
): Promise<unknown> {
  const parsed = command.input.safeParse(raw ?? {});
  if (!parsed.success) throw new AdminActionError(400, describeIssues(parsed.error));
  const out = await command.run(core, parsed.data, actor);
  if (command.mutates)
    core.log.info(
      { command: command.id, via: actor.via, by: actor.by, input: redacted(parsed.data) },
      'admin command',
    );
  return out;
}

/** The kind of value one input field takes (options and query parameters are strings until then). */
export function fieldKind(schema: z.ZodType): 'string' | 'number' | 'boolean' | 'enum' {
  let s: z.ZodType = schema;
  for (;;) {
    const def = (s as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
    if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType)
      s = def.innerType;
    else if (def.type === 'number' || def.type === 'boolean' || def.type === 'enum') return def.type;
    else return 'string';
  }
}

/**
 * Turns string values (query parameters, command-line options) into the types the input expects:
 * numbers and booleans (`true`/`1`, `false`/`0`); anything else is left for the schema to judge.
 */
export function coerceInput(command: AdminCommand, values: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const shape = command.input.shape as Record<string, z.ZodType>;
  for (const [k, v] of Object.entries(values)) {
    const field = shape[k];
    if (!field) {
      out[k] = v;
      continue;
    }
    const kind = fieldKind(field);
    if (kind === 'number' && /^-?\d+(\.\d+)?$/.test(v)) out[k] = Number(v);
    else if (kind === 'boolean' && /^(true|1|false|0)$/.test(v)) out[k] = v === 'true' || v === '1';
    else out[k] = v;
  }
  return out;
}

/** JSON Schema (2020-12, as OpenAPI 3.1 takes it) of a zod schema, without its `$schema` line. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const s = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}

/**
 * The OpenAPI 3.1 description of the HTTP API, generated from the commands' schemas: what
 * `GET /api/openapi.json` serves.
 */
export function openApiDocument(commands: readonly AdminCommand[], version: string): unknown {
  const error = {
    description: 'The command was refused or failed; `error` says why.',
    content: {
      'application/json': {
        schema: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] },
      },
    },
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const c of commands) {
    const input = jsonSchema(c.input, 'input');
    const op: Record<string, unknown> = {
      operationId: c.id,
      summary: c.summary,
      ...(c.description ? { description: c.description } : {}),
      tags: [c.cli.words[0]],
      responses: {
        '200': {
          description: 'Done.',
          content: { 'application/json': { schema: jsonSchema(c.output, 'output') } },
        },
        '400': error,
        '401': error,
        '404': error,
        '409': error,
      },
    };
    if (c.http.method === 'GET') {
      const props = (input.properties ?? {}) as Record<string, Record<string, unknown>>;
      const required = new Set((input.required as string[] | undefined) ?? []);
      op.parameters = Object.entries(props).map(([name, schema]) => ({
        name,
        in: 'query',
        required: required.has(name),
        schema,
        ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
      }));
    } else {
      op.requestBody = { required: true, content: { 'application/json': { schema: input } } };
    }
    (paths[c.http.path] ??= {})[c.http.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Natter admin API',
      version,
      description:
        "The administrator's commands of a Natter server, on its admin listener (default 127.0.0.1:5281). " +
        'When the listener has a token, every request needs `Authorization: Bearer <token>`. ' +
        'The same commands run from the command line (`natter`) and, for the accounts in `admins`, as XEP-0133 ad-hoc commands.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearer: [] }, {}],
    paths,
  };
}
