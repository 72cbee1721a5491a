/**
 * A WebAuthn authenticator in software, for tests that need attestation the browser's virtual
 * authenticator cannot make: `none`, packed self attestation, or packed attestation under a
 * certificate chain made at test time (test/support/test-pki.ts). It answers the JSON options
 * Kapija's WebAuthn factor produces with the JSON a browser would post back.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

export type AttestationMode =
  | { format: 'none' }
  | { format: 'packed-self' }
  | { format: 'packed'; key: KeyObject; x5c: readonly Buffer[] };

export interface SoftAuthenticatorOptions {
  /** The authenticator model's AAGUID (what it claims; nothing stops software from claiming any). */
  aaguid: string;
  attestation: AttestationMode;
  /** Backup eligible and backed up: a synced passkey. */
  synced?: boolean;
  userVerified?: boolean;
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

export class SoftAuthenticator {
  private readonly privateKey: KeyObject;
  private readonly cose: Uint8Array;
  readonly credentialId = randomBytes(32);
  private counter = 0;
  private userHandle: string | undefined;

  constructor(
    private readonly opts: SoftAuthenticatorOptions,
    private readonly origin: string,
    private readonly rpId: string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.cose = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
        [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))],
      ]),
    );
  }

  private flags(extra: number): number {
    let f = 0x01 | extra; // user present
    if (this.opts.userVerified) f |= 0x04;
    if (this.opts.synced) f |= 0x08 | 0x10;
    return f;
  }

  private clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.origin, crossOrigin: false }));
  }

  /** The response to registration options (navigator.credentials.create). */
  register(options: { challenge: string; user: { id: string } }): Record<string, unknown> {
    this.userHandle = options.user.id;
    const aaguid = Buffer.from(this.opts.aaguid.replace(/-/g, ''), 'hex');
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([sha256(this.rpId), Buffer.from([this.flags(0x40)]), Buffer.alloc(4), aaguid, idLength, this.credentialId, Buffer.from(this.cose)]);
    const clientDataJSON = this.clientData('webauthn.create', options.challenge);
    const signed = Buffer.concat([authData, sha256(clientDataJSON)]);
    const a = this.opts.attestation;
    const attStmt = new Map<string, number | Uint8Array | Uint8Array[]>();
    if (a.format === 'packed-self') {
      attStmt.set('alg', -7).set('sig', new Uint8Array(sign('sha256', signed, this.privateKey)));
    } else if (a.format === 'packed') {
      attStmt.set('alg', -7).set('sig', new Uint8Array(sign('sha256', signed, a.key))).set('x5c', a.x5c.map((c) => new Uint8Array(c)));
    }
    const attestationObject = isoCBOR.encode(
      new Map<string, string | Uint8Array | Map<string, number | Uint8Array | Uint8Array[]>>([
        ['fmt', a.format === 'none' ? 'none' : 'packed'],
        ['attStmt', attStmt],
        ['authData', new Uint8Array(authData)],
      ]),
    );
    const id = b64u(this.credentialId);
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['usb'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'cross-platform',
    };
  }

  /** The response to authentication options (navigator.credentials.get). */
  assert(options: { challenge: string }): Record<string, unknown> {
    this.counter += 1;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(this.counter);
    const authData = Buffer.concat([sha256(this.rpId), Buffer.from([this.flags(0)]), count]);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), this.privateKey);
    const id = b64u(this.credentialId);
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        ...(this.userHandle ? { userHandle: this.userHandle } : {}),
      },
      clientExtensionResults: {},
    };
  }
}
