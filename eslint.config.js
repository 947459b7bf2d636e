// ESLint flat config: type-aware rules where they catch real bugs in async network code.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'data/**',
      'bench/results/**',
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
  {
    // The client SDK runs in browsers: Node built-ins only in *.node.ts files.
    files: [
      'packages/client/src/**/*.ts',
      'packages/xml/src/**/*.ts',
      'packages/jid/src/**/*.ts',
      'packages/protocol/src/**/*.ts',
    ],
    ignores: ['**/*.node.ts', '**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['node:*'], message: 'browser code: Node built-ins only in *.node.ts files' }],
        },
      ],
      'no-restricted-globals': ['error', { name: 'Buffer', message: 'browser code: use Uint8Array' }],
    },
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
