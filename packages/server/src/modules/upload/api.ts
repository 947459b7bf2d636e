/**
 * What the upload module offers its peers and operators' tooling (`ctx.use<UploadApi>('upload')`):
 * the sweep that deletes expired files, and what an account uses.
 */
export interface UploadApi {
  /** The service's domain on this host (`upload.<domain>`). */
  domain: string;
  /**
   * Deletes stored files past `expiryDays`, slots unused past `slotTtlSeconds` and abandoned
   * uploads, as of `now` (default: the present; it runs every `sweepIntervalSeconds` by itself).
   * Resolves with how many went.
   */
  sweep(now?: number): Promise<number>;
  /** Bytes an account (bare JID) uses, stored files and open slots, as its quota counts them. */
  usage(owner: string): Promise<number>;
}
