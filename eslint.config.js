// ESLint flat config: type-aware rules where they catch real bugs in async network code.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Test files (their helpers live under test/, rule 8). */
const TEST_FILES = ['**/*.test.ts'];

const BROWSER = { group: ['node:*'], message: 'browser code: Node built-ins only in *.node.ts files' };
const NO_BUFFER = {
  'no-restricted-globals': ['error', { name: 'Buffer', message: 'browser code: use Uint8Array' }],
};
const RULE_1 = {
  regex: '^@natter/(server|client|component)(/|$)|(^|/)(server|client|component)/src(/|$)',
  message: 'rule 1: xml, jid and protocol never import server, client or component',
};
const RULE_2_SERVER = {
  regex: '^@natter/server(/|$)|(^|/)server/src(/|$)',
  message: 'rule 2: the client never imports the server',
};
const RULE_2_NODE_FILES = {
  regex: '\\.node(\\.[jt]s)?$',
  message: 'rule 2: browser code never imports a *.node.ts file',
};
const CLIENT_PLUGINS =
  'avatar|disco|muc|ping|pubsub|receipts|reconnect|roster|storage|stream-management|vcard';
const RULE_2_CORE = {
  regex: `^\\.\\./(${CLIENT_PLUGINS})(/|$)`,
  message: 'rule 2: the client core never imports a plugin folder (move what it needs into core/)',
};
const RULE_3 = {
  regex: '^\\.\\./(modules|listeners)(/|$)',
  message: 'rule 3: the server core never imports a module or a listener',
};
const RULE_4 = {
  regex: '^\\.\\./core(/|$)',
  message: 'rule 4: accounts/ and storage/ sit below the core and never import it',
};
/** Rule 5 for a file `depth` folders below modules/ (1: modules/<x>/file.ts). */
const RULE_5 = (depth) => {
  const up = '\\.\\./'.repeat(depth);
  return [
    {
      regex: `^${up}\\.\\./(?!core/module-api\\.js$|util/)`,
      message:
        'rule 5: a module imports from the server only core/module-api.js (and the pure util/ libraries)',
    },
    {
      regex: `^${up}(?!\\.\\./)(index\\.js$|[^/]+/(?!api\\.js$))`,
      message: 'rule 5: a module imports another module only through its api.ts (modules/<x>/api.ts)',
    },
  ];
};
const RULE_8 = {
  regex: '(^|/)test(/|$)',
  message: 'rule 8: src never imports test helpers (they live under test/)',
};
const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'data/**',
      'bench/results/**',
      // Needs React Native's packages, which this repository does not install (README: Examples).
      'packages/client/examples/react-native/**',
      // TypeDoc's output (npm run docs:api), with copies of the linked examples.
      'packages/client/docs/api/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // node:test's test()/describe() return promises the runner tracks itself.
    files: ['**/*.test.ts', '**/test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
  // Rules of the house (DESIGN.md; docs/dev/house-rules.md) that imports can show.
  // In flat config a later `no-restricted-imports` for the same file REPLACES an earlier one, so
  // each block below lists every pattern that applies to its files (`restrict(...)` merges them),
  // ordered from the widest file set to the narrowest. test/lint/house-rules.test.ts proves each
  // rule still fires.
  {
    // Rule 8 everywhere in src.
    files: ['packages/*/src/**/*.ts'],
    ignores: TEST_FILES,
    rules: restrict(RULE_8),
  },
  {
    // Rules 1 and 8, and browser code (the shared packages run in the client too).
    files: ['packages/xml/src/**/*.ts', 'packages/jid/src/**/*.ts', 'packages/protocol/src/**/*.ts'],
    ignores: [...TEST_FILES, '**/*.node.ts'],
    rules: { ...restrict(RULE_8, RULE_1, BROWSER), ...NO_BUFFER },
  },
  {
    // Rules 2 and 8 in the client's browser code.
    files: ['packages/client/src/**/*.ts'],
    ignores: [...TEST_FILES, '**/*.node.ts'],
    rules: { ...restrict(RULE_8, RULE_2_SERVER, RULE_2_NODE_FILES, BROWSER), ...NO_BUFFER },
  },
  {
    // The client's Node-only files may use Node, never the server.
    files: ['packages/client/src/**/*.node.ts'],
    ignores: TEST_FILES,
    rules: restrict(RULE_8, RULE_2_SERVER),
  },
  {
    // Rule 2: the client core never imports a plugin folder.
    files: ['packages/client/src/core/**/*.ts'],
    ignores: [...TEST_FILES, '**/*.node.ts'],
    rules: { ...restrict(RULE_8, RULE_2_SERVER, RULE_2_NODE_FILES, RULE_2_CORE, BROWSER), ...NO_BUFFER },
  },
  {
    // Rule 3: the server core knows no feature and no socket.
    files: ['packages/server/src/core/**/*.ts'],
    ignores: TEST_FILES,
    rules: restrict(RULE_8, RULE_3),
  },
  {
    // Rule 4: accounts/ and storage/ sit below the core.
    files: ['packages/server/src/accounts/**/*.ts', 'packages/server/src/storage/**/*.ts'],
    ignores: TEST_FILES,
    rules: restrict(RULE_8, RULE_4),
  },
  {
    // Rule 5, for a module's own files (modules/<x>/*.ts).
    files: ['packages/server/src/modules/*/*.ts'],
    ignores: TEST_FILES,
    rules: restrict(RULE_8, ...RULE_5(1)),
  },
  {
    // Rule 5, one folder deeper (modules/<x>/<sub>/*.ts, e.g. pubsub/commands/).
    files: ['packages/server/src/modules/*/*/*.ts'],
    ignores: TEST_FILES,
    rules: restrict(RULE_8, ...RULE_5(2)),
  },
  {
    // Rule of the house 1 and the gateway SDK's promise: the component never depends on the server.
    // Only the test harness (the ./testing subpath) may start a server and log users in.
    files: ['packages/component/src/**/*.ts'],
    ignores: ['packages/component/src/testing/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@natter/server', '@natter/server/*', '**/server/src/**'],
              message: 'the component SDK never imports the server',
            },
            {
              group: ['@natter/client', '@natter/client/*', '**/client/src/**'],
              message: 'the component SDK is built on xml, jid and protocol only',
            },
          ],
        },
      ],
    },
  },
);
