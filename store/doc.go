// Package store keeps minik's objects: a revisioned key-value store with a
// watch log, durable on acknowledgement.
//
// # Contract
//
// Store is the interface every backend implements (bbolt here, etcd later);
// storetest.Suite checks a backend against it.
//
// # Writes
//
// Bolt has one committer goroutine. It takes every write waiting in its
// queue, applies them in order in one bbolt transaction (a write sees the
// ones before it; a failed precondition fails only that write), gives each
// successful write the next revision, commits with fsync, publishes the
// events to watchers and only then acknowledges the writers. There is no
// timer: a lone write commits at once, and under load the groups grow by
// themselves.
//
// # Watches
//
// Events of recent revisions stay in an in-memory window. A watcher that
// keeps up is served straight from each commit without ever blocking it
// (watchers are indexed by prefix). One whose channel is full is set aside
// and a goroutine of its own catches it up, at the reader's pace, from the
// window, or from the log bucket when the window no longer reaches back
// far enough, then hands it back; if the log was compacted past it, it
// gets an EventError with ErrCompacted and its channel is closed. A watch
// from a past revision starts the same way. Watchers that are caught up
// get an EventProgress every Options.ProgressInterval.
//
// # Compaction
//
// Compact records the compacted revision in meta, then deletes the log
// records up to it in short transactions. Automatic compaction keeps both
// Options.KeepRevisions revisions and Options.KeepDuration of history.
//
// # Snapshots
//
// Bolt.Snapshot copies the database file as one read transaction sees it
// (bbolt's Tx.WriteTo): the committer goes on meanwhile, and the copy holds
// exactly the revisions up to the one it reports. Restore turns such a copy
// into a store file whose revision is moved well past the snapshot's and
// compacted up to there, with an empty log: revisions handed out by the
// store the snapshot came from after it are never reused, and a List or
// Watch from one of them fails with ErrCompacted. Etcd.Snapshot streams
// etcd's snapshot (the whole etcd database, SHA-256 trailer included).
//
// # Layout
//
// The bbolt file holds three buckets (schema version 1):
//
//	meta
//	├── "schema"    → uint64 BE: layout version
//	├── "revision"  → uint64 BE: last committed revision
//	└── "compacted" → uint64 BE: compacted revision (absent = 0)
//	keys                          current objects
//	└── <key>       → createRev uint64 BE | modRev uint64 BE | value
//	log                           one record per revision, in revision order
//	└── <rev uint64 BE> → type byte (1 create, 2 update, 3 delete)
//	                    | uvarint createRev
//	                    | uvarint prevModRev (0 for create)
//	                    | uvarint len | key
//	                    | uvarint len | value (empty for delete)
//	                    | previous value, to the end (absent for create)
//
// The revision in meta is written in the same transaction as the records,
// so it survives a crash and is never reused. A List at a past revision
// starts from keys and undoes the log records after it, newest first, using
// the previous value and revisions they carry. ListPage seeks keys to its
// start key and undoes only the records of keys from there on, so a page
// costs its length plus the writes since its revision.
package store
