// Installs Debian packages on demand for tests and helpers that run software nobody here wrote
// (Prosody, ejabberd, biboumi, ngIRCd, slixmpp): one apt recipe, serialised by one lock.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Installs Debian packages with apt when `probe` (a file) is missing. The policy-rc.d trick keeps
 * Debian from starting their system services (ngircd would take port 6667); the flock serialises
 * apt with the other test files and helpers that install packages.
 */
export async function ensureDebianPackages(probe: string, packages: string[]): Promise<void> {
  if (existsSync(probe)) return;
  const names = packages.join(' ');
  await run(
    'sh',
    [
      '-c',
      `flock /tmp/natter-apt.lock sh -c 'if [ ! -e ${probe} ]; then
       created=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf "#!/bin/sh\\nexit 101\\n" > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1; fi;
       (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${names}) >/dev/null 2>&1; rc=$?;
       [ -n "$created" ] && rm -f /usr/sbin/policy-rc.d; exit $rc; fi'`,
    ],
    { timeout: 600_000 },
  );
  if (!existsSync(probe)) throw new Error(`installing ${names} did not provide ${probe}`);
}
