import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * TOTP secrets at rest: AES-256-GCM under the server key (MFA_ENCRYPTION_KEY), a fresh
 * 96-bit nonce each time, the user id as additional data (a ciphertext copied onto another
 * user's row does not decrypt). Stored as `v1.<nonce>.<tag>.<ciphertext>`, base64url.
 */
export interface SecretBox {
  seal (plaintext: string, userId: string): string
  /** throws when the key is wrong or the value was tampered with */
  open (sealed: string, userId: string): string
}

export function secretBox (key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('the secret box key must be 32 bytes')
  return {
    seal (plaintext, userId) {
      const nonce = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, nonce)
      cipher.setAAD(Buffer.from(userId, 'utf8'))
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return ['v1', nonce, cipher.getAuthTag(),
        body].map((p) => typeof p === 'string' ? p : p.toString('base64url')).join('.')
    },
    open (sealed, userId) {
      const [version, nonce, tag, body] = sealed.split('.')
      if (version !== 'v1' || body === undefined) throw new Error('not a sealed secret')
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'))
      decipher.setAAD(Buffer.from(userId, 'utf8'))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
    }
  }
}
