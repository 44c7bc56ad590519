// Package transport names how items are addressed when they travel between
// processes: which partition (and so which JetStream subject) an item goes
// to, and the message id that lets the stream drop a resent item.
package transport

import (
	"hash/fnv"
	"strconv"
	"time"

	"lookout/item"
)

// SubjectPrefix is the prefix of the per-partition item subjects.
const SubjectPrefix = "lookout.items."

// Partition is the partition of a room: a stable hash of source and room
// modulo n, so that one room's items always go to one partition, in order.
// n < 1 counts as 1.
func Partition(source, room string, n int) int {
	if n < 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(room))
	return int(h.Sum32() % uint32(n))
}

// Subject is the subject an item is published to among n partitions.
func Subject(it *item.Item, n int) string {
	return partitionSubject(Partition(it.Source, it.Room, n))
}

// partitionSubject is partition p's subject (partitionOfSubject reads it
// back).
func partitionSubject(p int) string { return SubjectPrefix + strconv.Itoa(p) }

// MsgID is the Nats-Msg-Id of an item: source and item id, plus the change
// and its time for an edit or delete, so a resend of the same item is
// dropped by the stream while a later edit of it is not.
func MsgID(it *item.Item) string {
	id := it.Source + "\x1f" + it.ID
	if it.Change != "" {
		id += "\x1f" + string(it.Change) + "\x1f" + it.ChangedAt.UTC().Format(time.RFC3339Nano)
	}
	return id
}
