// X-If-Modified-Since / X-If-Unmodified-Since against a resource timestamp (spec 4.3).
// Evaluated inside the user's lock, right before the operation, so the answer holds.
import { SyncError } from '../../common/errors.js';
import type { Preconditions } from '../store.js';

export function checkPreconditions(resource: number, pre: Preconditions, isRead: boolean): void {
  // X-If-Modified-Since only makes sense for reads; on writes it is ignored (spec 4.3).
  if (isRead && pre.ifModifiedSince !== undefined && resource <= pre.ifModifiedSince) {
    throw new SyncError('not-modified', undefined, { lastModified: resource });
  }
  if (pre.ifUnmodifiedSince !== undefined && resource > pre.ifUnmodifiedSince) {
    throw new SyncError('precondition-failed', undefined, { lastModified: resource });
  }
}
