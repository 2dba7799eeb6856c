import type { RevocationEntry } from '../revocation/contract'

/** One row of the revocation log with its position (`seq`). */
export interface LogRow extends RevocationEntry {
  position: number
}

/**
 * What the revocation feed reads from the revocation log (src/db/<dialect>/revocation-feed-repository.ts).
 * It relies on the log's one ordering rule (src/db/<dialect>/revocation-log.ts): rows become
 * visible in position order, so any one read sees every row up to some position and none
 * after, and moving a position only to a row read never skips one.
 */
export interface RevocationFeedRepository {
  /** Rows after `position` in position order (expired ones too: a position may move past them), at most `limit`. */
  after (position: number, limit: number): Promise<LogRow[]>
  /** The lowest and highest positions the log holds now (0 and 0 when it is empty). */
  bounds (): Promise<{ first: number, last: number }>
  /**
   * Entries after `position` still live at `now`, at most `limit`, and the position they
   * cover: the last row's when the page is full, else the log's last one (one read).
   */
  page (position: number, now: number, limit: number): Promise<{ rows: LogRow[], position: number }>
  /**
   * Every entry live at `now` and the position they cover, from one snapshot of the log.
   * Read in pages, so that no statement of a large snapshot meets the statement timeout.
   */
  snapshot (now: number): Promise<{ entries: RevocationEntry[], position: number }>
}

/**
 * Whether the log still holds `position`, so that the rows after it are all a consumer at
 * it lacks: not ahead of the log's last position, and not before rows already pruned.
 * (Pruning removes only expired rows, but a consumer that far behind gets a snapshot.)
 */
export function holdsPosition (position: number, { first, last }: { first: number, last: number }): boolean {
  return position <= last && (last === 0 || position >= first - 1)
}
