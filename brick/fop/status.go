package fop

import (
	"fmt"
	"strings"
	"time"
)

// Status is one node of the graph as `brickfs status`, the metrics and
// the statedump show it: a layer cannot import the assembler, so the type
// lives in the vocabulary. Each layer fills the figures of its kind; the
// others stay nil. The figures are read from atomics and short critical
// sections, never across a call to a brick.
type Status struct {
	Name     string   `json:"name"`             // translator name in the volfile
	Type     string   `json:"type"`             // translator type
	Up       bool     `json:"up"`               // CHILD_UP as the node defines it
	Detail   string   `json:"detail,omitempty"` // one line for humans: a brick's address, a replica set's quorum and heal queue
	Children []Status `json:"children,omitempty"`

	Brick      *BrickStats      `json:"brick,omitempty"`
	Replica    *ReplicaStats    `json:"replica,omitempty"`
	Distribute *DistributeStats `json:"distribute,omitempty"`
	Shard      *ShardStats      `json:"shard,omitempty"`
	Fops       *FopStats        `json:"fops,omitempty"` // the graph's top: what the mount asked of the volume
}

// BrickStats are a brick client's figures (protocol/client).
type BrickStats struct {
	Host      string `json:"host"` // the glusterd host
	Port      int    `json:"port"` // the brick's own port, 0 before the first connect
	Path      string `json:"path"` // the brick directory (remote-subvolume)
	Connected bool   `json:"connected"`
	// Since is when the connection up now was made (zero while down).
	Since time.Time `json:"connected_since,omitzero"`
	// PingRTT is the round trip of the last ping answered.
	PingRTT time.Duration `json:"ping_rtt_ns"`
	// Inflight is fops sent and not answered; Pending every call waiting
	// on the connection (pings and handshakes included).
	Inflight int `json:"inflight"`
	Pending  int `json:"pending_calls"`
	// Reconnects counts connections made after the first.
	Reconnects uint64 `json:"reconnects"`
	// Disconnects counts connections lost (a kick for a missed fop
	// deadline included).
	Disconnects uint64 `json:"disconnects"`
	// Calls and Errors count fops sent and fops that failed.
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
	// BytesSent and BytesReceived count fop arguments, payloads and
	// replies (RPC headers excluded).
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	// LastError is why the last connect failed or the connection broke,
	// at LastErrorAt.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// ReplicaStats are a replica set's figures (cluster/replicate).
type ReplicaStats struct {
	BricksUp    int    `json:"bricks_up"`
	Bricks      int    `json:"bricks"`
	Quorum      string `json:"quorum"` // the client quorum rule, e.g. "2 of 3"
	QuorumMet   bool   `json:"quorum_met"`
	HealPending int    `json:"heal_pending"` // files and directories this client accused a brick for, not healed yet
	// SplitBrain counts the times a file was found in split-brain (no
	// readable copy, or different GFIDs under one name).
	SplitBrain uint64 `json:"split_brain"`
	// Lagging lists the children cut from changes, still working.
	Lagging []string `json:"lagging,omitempty"`
	// Cuts counts calls cut from changes for lagging.
	Cuts int64 `json:"cuts"`
	// Failovers are, per child, the events that took it out of the
	// set's I/O.
	Failovers []FailoverStats `json:"failovers,omitempty"`
	// Inodes is the size of the set's inode table; EagerLocks the data
	// locks it holds now; Fds the fds open through it.
	Inodes     int `json:"inodes"`
	EagerLocks int `json:"eager_locks"`
	Fds        int `json:"fds"`
}

// FailoverStats counts, for one child of a replica set, the events that
// took it out of the I/O: "down" (its connection was lost), "cut" (lagging
// behind its peers in a change), "kick" (dropped for missing the fop
// timeout). LastStall is how long the I/O that met the last event waited
// on the child, where known (a cut's, a kick's).
type FailoverStats struct {
	Brick     string            `json:"brick"`
	Events    map[string]uint64 `json:"events,omitempty"`
	LastStall time.Duration     `json:"last_stall_ns,omitempty"`
	// Stalls is the sum of the known stalls, StallCount how many there are.
	Stalls     time.Duration `json:"stalls_ns,omitempty"`
	StallCount uint64        `json:"stall_count,omitempty"`
}

// DistributeStats are a distribute layer's figures (cluster/distribute).
type DistributeStats struct {
	SubvolumesUp int `json:"subvolumes_up"`
	Subvolumes   int `json:"subvolumes"`
	// Migrations are files this client follows to their new subvolume
	// now (a rebalance moving them).
	Migrations int `json:"migrations"`
	Inodes     int `json:"inodes"`
}

// ShardStats are a shard layer's figures (features/shard).
type ShardStats struct {
	BlockSize uint64 `json:"block_size"`
	Inodes    int    `json:"inodes"` // files whose size and blocks the layer knows
	// RemoveBacklog is the .shard/.remove_me entries found at the last
	// look and not deleted yet.
	RemoveBacklog int64 `json:"remove_backlog"`
	// OpenBlocks is the block fds kept open across the volume.
	OpenBlocks int `json:"open_blocks"`
}

// FopStats are what the mount asked of the volume, per fop, at the top of
// the graph (debug/io-stats).
type FopStats struct {
	// Buckets are the latency histogram's upper bounds; each Fop's
	// Buckets counts the calls at most that long (not cumulative), with
	// one more for the calls longer than the last.
	Buckets      []time.Duration `json:"buckets_ns"`
	Fops         []OneFopStats   `json:"fops"` // only those called
	BytesRead    uint64          `json:"bytes_read"`
	BytesWritten uint64          `json:"bytes_written"`
}

// OneFopStats is one fop's figures.
type OneFopStats struct {
	Fop     string            `json:"fop"` // GlusterFS's name: WRITE, LOOKUP, COPY_FILE_RANGE
	Count   uint64            `json:"count"`
	Errors  map[string]uint64 `json:"errors,omitempty"` // by errno name: ENOENT
	Total   time.Duration     `json:"total_ns"`         // the sum of the latencies
	Buckets []uint64          `json:"buckets"`
}

// String renders the tree, one node per line, children indented.
func (s Status) String() string {
	var b strings.Builder
	s.write(&b, 0)
	return b.String()
}

func (s Status) write(b *strings.Builder, depth int) {
	state := "down"
	if s.Up {
		state = "up"
	}
	fmt.Fprintf(b, "%s%s (%s) %s", strings.Repeat("  ", depth), s.Name, s.Type, state)
	if s.Detail != "" {
		fmt.Fprintf(b, ": %s", s.Detail)
	}
	b.WriteByte('\n')
	for _, c := range s.Children {
		c.write(b, depth+1)
	}
}

// Walk calls fn on s and every node below it, parents first.
func (s *Status) Walk(fn func(*Status)) {
	fn(s)
	for i := range s.Children {
		s.Children[i].Walk(fn)
	}
}
