export { NS } from './namespaces.js';
export * from './errors.js';
export * from './data-forms.js';
export * from './rsm.js';
export * from './delay.js';
export * from './sasl/index.js';
export * from './emitter.js';
