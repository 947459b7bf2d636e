import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM file paths of a certificate and its private key. */
export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCa {
  /** The CA certificate (PEM file): trust it (`ca: [readFileSync(caCert)]`) to verify the leaves. */
  caCert: string;
  /** One leaf per domain asked for, signed by the CA. */
  certs: Record<string, CertFiles>;
}

const openssl = async (args: string[]): Promise<void> => {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
};

/** A file-name-safe form of a domain (`*.example.test` → `wildcard.example.test`). */
const fileStem = (domain: string): string => domain.replace(/^\*\./, 'wildcard.').replace(/[^\w.-]/g, '_');

/** `YYMMDDHHMMSSZ` (UTCTime), the date form `openssl ca -startdate` and `x509 -not_before` take. */
const asn1Date = (d: Date): string => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';

/** A positive random serial, as `-set_serial` takes it. */
const serial = (): string => {
  const b = randomBytes(8);
  b[0] = b[0]! & 0x7f;
  return `0x${b.toString('hex')}`;
};

/** The minimal config `openssl req` needs when given `-subj` (so no system openssl.cnf is read). */
const REQ_CONFIG = `[req]
distinguished_name = req_dn
prompt = no
[req_dn]
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

const leafExtensions = (domain: string, serverOnly = false): string => `basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = ${serverOnly ? 'serverAuth' : 'serverAuth,clientAuth'}
subjectAltName = ${isIP(domain) ? 'IP' : 'DNS'}:${domain}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
`;

/** A new EC P-256 key (`keyOut`) and a certificate request for `/CN=<cn>` (`csrOut`). */
async function newKeyAndRequest(config: string, cn: string, keyOut: string, csrOut: string): Promise<void> {
  await openssl([
    'req',
    '-new',
    '-config',
    config,
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyOut,
    '-subj',
    `/CN=${cn}`,
    '-out',
    csrOut,
  ]);
}

let notBeforeSupport: Promise<boolean> | undefined;
/** Whether this openssl's `x509` takes `-not_before/-not_after` (OpenSSL 3.4 and later). */
function x509TakesDates(): Promise<boolean> {
  notBeforeSupport ??= run('openssl', ['x509', '-help']).then(
    ({ stdout, stderr }) => `${stdout}${stderr}`.includes('-not_before'),
    (err: { stdout?: string; stderr?: string }) =>
      `${err.stdout ?? ''}${err.stderr ?? ''}`.includes('-not_before'),
  );
  return notBeforeSupport;
}

/**
 * Signs `csr` with the CA for a validity period entirely in the past (two days ago to one day ago):
 * `x509 -req -not_before/-not_after` where this openssl has them, else `openssl ca` with
 * `-startdate/-enddate` (and its database files, all under `dir`).
 */
async function signExpired(
  dir: string,
  ca: CertFiles,
  csr: string,
  extFile: string,
  out: string,
): Promise<void> {
  const day = 24 * 3600 * 1000;
  const start = asn1Date(new Date(Date.now() - 2 * day));
  const end = asn1Date(new Date(Date.now() - day));
  if (await x509TakesDates()) {
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      serial(),
      '-sha256',
      '-not_before',
      start,
      '-not_after',
      end,
      '-extfile',
      extFile,
      '-out',
      out,
    ]);
    return;
  }
  // One database per call: leaves are signed concurrently.
  const caDir = join(dir, `ca-db-${randomBytes(4).toString('hex')}`);
  const issued = join(caDir, 'issued');
  await mkdir(issued, { recursive: true });
  const database = join(caDir, 'index.txt');
  const serialFile = join(caDir, 'serial');
  await writeFile(database, '');
  await writeFile(serialFile, `${serial().slice(2)}\n`);
  const config = join(caDir, 'ca.cnf');
  await writeFile(
    config,
    `[ca]
default_ca = test_ca
[test_ca]
database = ${database}
new_certs_dir = ${issued}
serial = ${serialFile}
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
`,
  );
  await openssl([
    'ca',
    '-batch',
    '-config',
    config,
    '-cert',
    ca.cert,
    '-keyfile',
    ca.key,
    '-in',
    csr,
    '-startdate',
    start,
    '-enddate',
    end,
    '-extfile',
    extFile,
    '-notext',
    '-out',
    out,
  ]);
}

/**
 * A throwaway CA in `dir` (EC P-256, self-signed, CA:true, valid one day) and, for every domain, a
 * leaf signed by it: SAN `DNS:<domain>` (a wildcard like `*.example.test` works), serverAuth and
 * clientAuth, CA:false, valid one day; for the domains in `opts.expired` a validity period entirely
 * in the past instead. Every file goes into `dir`; the paths are returned.
 */
export async function makeTestCa(
  dir: string,
  domains: string[],
  /** `serverAuthOnly`: leaves without the clientAuth usage, as public CAs issue them today. */
  opts: { expired?: string[]; serverAuthOnly?: string[] } = {},
): Promise<TestCa> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'req.cnf');
  await writeFile(config, REQ_CONFIG);
  const ca: CertFiles = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  await openssl([
    'req',
    '-x509',
    '-new',
    '-config',
    config,
    '-extensions',
    'v3_ca',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    ca.key,
    '-subj',
    '/CN=Natter Test CA',
    '-days',
    '1',
    '-sha256',
    '-out',
    ca.cert,
  ]);
  const expired = new Set(opts.expired ?? []);
  const certs: Record<string, CertFiles> = {};
  await Promise.all(
    domains.map(async (domain) => {
      const stem = fileStem(domain);
      const files: CertFiles = { cert: join(dir, `${stem}.crt`), key: join(dir, `${stem}.key`) };
      const csr = join(dir, `${stem}.csr`);
      const extFile = join(dir, `${stem}.ext`);
      await writeFile(extFile, leafExtensions(domain, opts.serverAuthOnly?.includes(domain)));
      await newKeyAndRequest(config, domain, files.key, csr);
      if (expired.has(domain)) await signExpired(dir, ca, csr, extFile, files.cert);
      else
        await openssl([
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          ca.cert,
          '-CAkey',
          ca.key,
          '-set_serial',
          serial(),
          '-sha256',
          '-days',
          '1',
          '-extfile',
          extFile,
          '-out',
          files.cert,
        ]);
      certs[domain] = files;
    }),
  );
  return { caCert: ca.cert, certs };
}

/**
 * A self-signed leaf for `domain` in `dir` (EC P-256, SAN `DNS:<domain>`, one day), signed by no
 * CA: a peer presenting it is not trusted.
 */
export async function selfSigned(dir: string, domain: string): Promise<CertFiles> {
  await mkdir(dir, { recursive: true });
  const stem = `self-signed-${fileStem(domain)}`;
  const config = join(dir, `${stem}.cnf`);
  await writeFile(
    config,
    `${REQ_CONFIG}[leaf]\n${leafExtensions(domain).replace(/^authorityKeyIdentifier.*\n/m, '')}`,
  );
  const files: CertFiles = { cert: join(dir, `${stem}.crt`), key: join(dir, `${stem}.key`) };
  await openssl([
    'req',
    '-x509',
    '-new',
    '-config',
    config,
    '-extensions',
    'leaf',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    files.key,
    '-subj',
    `/CN=${domain}`,
    '-days',
    '1',
    '-sha256',
    '-out',
    files.cert,
  ]);
  return files;
}
