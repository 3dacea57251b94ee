// The design document of every user database. It is code: versioned here, installed by the
// program when a database is first opened, upgraded when this version is newer and never
// downgraded (an older gateway leaves a newer design document alone).
//
// Since version 3 it holds no function at all; it marks the database as syncgate's and says
// which version of the layout it has. Listings come from the gateway's in-memory record index
// (storage/engine/record-index.ts), and records are checked where they are read
// (storage/engine/docs.ts, isWellFormedRecord), not by a validate_doc_update.

export const DESIGN_ID = '_design/syncgate';
// 1: two views (by collection and modified, by collection and sortindex), validate_doc_update.
// 2: validate_doc_update alone. The views are gone: nothing queried them, yet CouchDB's
//    background indexer (ken) rebuilt them after every write.
// 3: nothing. Apache CouchDB ran validate_doc_update in a couchjs process for every document
//    written, and with many busy user databases it kept starting and stopping those processes
//    (os_process_limit): on one gateway and node under the realistic load mix, 167.9-177.2
//    sessions/s with it at the default limit, 210.0-270.5 with the limit raised to 1000, and
//    327.6 without it. Only the gateway's Couch user can write a user database (_security), and a node's
//    admins, who could write past it, could as well remove it: the gateway's own check on read
//    keeps what it serves well-formed whoever wrote it.
export const DESIGN_VERSION = 3;

export function buildDesignDoc(): Record<string, unknown> {
  return {
    _id: DESIGN_ID,
    version: DESIGN_VERSION,
    language: 'javascript',
  };
}
