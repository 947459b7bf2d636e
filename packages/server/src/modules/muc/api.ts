/**
 * What the muc module offers its peers and the administrator's commands (rule 5): the rooms of a
 * host's MUC service, and destroying one. Provided as `muc` on each host (`ctx.use<MucApi>('muc')`).
 */
export type { MucApi } from './service.js';
