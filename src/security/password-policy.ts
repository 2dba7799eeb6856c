import { readFileSync } from 'node:fs'
import { join } from 'node:path'

// A shipped list of the most common passwords of 8+ characters, compared case-insensitively
// (so "Password1" and "PASSWORD1" are refused too). Read once at start.
const COMMON = new Set(
  readFileSync(join(__dirname, 'common-passwords.txt'), 'utf8')
    .split('\n')
    .map((line) => line.trim().toLowerCase())
    .filter((line) => line.length > 0)
)

export function isCommonPassword (password: string): boolean {
  return password.length <= 64 && COMMON.has(password.toLowerCase())
}
