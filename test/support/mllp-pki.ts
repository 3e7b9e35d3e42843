import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway CA with a server certificate (127.0.0.1/localhost) and a client certificate it signed. */
export interface TestPki {
  ca: Buffer;
  serverKey: Buffer;
  serverCert: Buffer;
  clientKey: Buffer;
  clientCert: Buffer;
  /** A second client certificate from the same CA (CN `other client`), for allowlist tests. */
  otherClientKey: Buffer;
  otherClientCert: Buffer;
  /** The certificate of a CA that signed nothing the server presents: a wrong trust anchor. */
  otherCa: Buffer;
  /** A client certificate from a different CA, which the server must not accept. */
  strangerKey: Buffer;
  strangerCert: Buffer;
  cleanup(): void;
}

/** Generates the PKI with the openssl CLI into a temporary directory (EC P-256 keys: quick to make). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'mllp-pki-'));
  const p = (name: string) => join(dir, name);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (name: string) =>
    ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p(name));
  const selfSigned = (keyName: string, certName: string, cn: string) =>
    ssl(
      'req',
      '-x509',
      '-new',
      '-key',
      p(keyName),
      '-out',
      p(certName),
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
  const signed = (name: string, cn: string, ext: string, caName: string) => {
    key(`${name}.key`);
    ssl('req', '-new', '-key', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    writeFileSync(p(`${name}.ext`), ext);
    ssl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p(`${caName}.crt`),
      '-CAkey',
      p(`${caName}.key`),
      '-CAcreateserial',
      '-out',
      p(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      p(`${name}.ext`),
    );
  };

  key('ca.key');
  selfSigned('ca.key', 'ca.crt', 'mllp test CA');
  key('other-ca.key');
  selfSigned('other-ca.key', 'other-ca.crt', 'another CA');
  signed(
    'server',
    'localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
    'ca',
  );
  signed('client', 'mllp test client', 'extendedKeyUsage=clientAuth\n', 'ca');
  signed('other-client', 'other client', 'extendedKeyUsage=clientAuth\n', 'ca');
  signed('stranger', 'stranger', 'extendedKeyUsage=clientAuth\n', 'other-ca');

  const read = (name: string) => readFileSync(p(name));
  return {
    ca: read('ca.crt'),
    serverKey: read('server.key'),
    serverCert: read('server.crt'),
    clientKey: read('client.key'),
    clientCert: read('client.crt'),
    otherClientKey: read('other-client.key'),
    otherClientCert: read('other-client.crt'),
    otherCa: read('other-ca.crt'),
    strangerKey: read('stranger.key'),
    strangerCert: read('stranger.crt'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
