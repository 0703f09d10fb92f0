// Package partlog stores one partition's log in Kafka's on-disk format.
//
// A log is a directory of segments. Each segment is a file
// <20-digit base offset>.log holding RecordBatch v2 bytes exactly as
// produced (only the base offset is stamped in, which the CRC does not
// cover), with two sparse indexes in Kafka's formats: .index (8-byte
// entries: relative offset int32, file position int32, one per
// IndexIntervalBytes) and .timeindex (12-byte entries: timestamp int64,
// relative offset int32). All integers are big-endian. Keeping Kafka's
// format means fetches return stored bytes unchanged and Kafka's tools and
// reasoning about retention and compaction carry over.
//
// Write path. Append parses only the batch header, writes the batch with a
// single pwrite, and updates in-memory index state; it does not fsync.
// Sync(upTo) makes a prefix durable with group commit: concurrent callers
// share one fdatasync. DurableOffset is what has been synced, the value a
// broker uses as its high watermark. When the active segment rolls, it is
// fsynced and its indexes written (temp file + rename), so after a crash
// only the last segment can have a torn tail.
//
// Read path. Read locates a batch with the sparse index, then reads the
// span from the index entry to the requested byte budget with one pread
// and walks batch headers in memory. Readers hold a reference on the
// segment they read, so retention and compaction can delete or replace
// segments under them without closing a file in use.
//
// Recovery. Close writes a clean-shutdown marker; Open without one scans
// the last segment, checks every batch's CRC and truncates at the first
// torn or corrupt batch. Missing or implausible index files are rebuilt.
// The log start offset raised by DeleteRecords is kept in a
// "log-start-offset" file.
//
// Maintenance. EnforceRetention deletes whole old segments by time and
// size; Compact keeps the latest record per key in sealed segments,
// rewriting them through .cleaned and .swap files so that a crash leaves
// either the old or the new segment. Neither ever touches the active
// segment. Scheduling them is the caller's job.
package partlog
