import { z } from 'zod';
import { xml } from '@natter/xml';
import { NS } from '@natter/protocol';
import { defineModule, NATTER_VERSION } from '../../core/module-api.js';

/** Software version (XEP-0092). */
export default defineModule({
  name: 'version',
  description: 'Answers software version queries to the server',
  specs: ['XEP-0092'],
  enabledByDefault: true,
  options: z
    .object({ showOs: z.boolean().default(false) })
    .strict()
    .prefault({}),
  reloadable: ['showOs'],
  setup(ctx) {
    ctx.iq('host', 'get', NS.version, 'query', () =>
      xml(
        'query',
        { xmlns: NS.version },
        xml('name', null, 'Natter'),
        xml('version', null, NATTER_VERSION),
        ctx.options.showOs && xml('os', null, process.platform),
      ),
    );
  },
});
