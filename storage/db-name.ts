// The one place a user's database name is made: from the verified token's uid, never from a
// path substring or an email. Couch names must start with a lowercase letter.
export function userDbName(uid: string): string {
  if (!/^[0-9]{1,20}$/.test(uid)) throw new Error('uid must be decimal digits');
  return `sync_${uid}`;
}

/** The uid a user database belongs to, or undefined for any other database. */
export function uidOfDbName(name: string): string | undefined {
  return /^sync_([0-9]{1,20})$/.exec(name)?.[1];
}
