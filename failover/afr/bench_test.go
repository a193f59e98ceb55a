package afr

import (
	"context"
	"syscall"
	"testing"
)

// BenchmarkReplicatedWrite is the replica layer's own cost per 4 KiB
// write with every brick up and the eager lock held: fan-out to three
// in-memory bricks, outcome, lock bookkeeping. No network, so it shows
// what the transaction logic adds to each write (time and allocations).
func BenchmarkReplicatedWrite(b *testing.B) {
	r, f := newTestReplica(b)
	for _, c := range f {
		c.quiet = true
	}
	ctx := context.Background()
	fd, _, err := r.Open(ctx, testGFID, syscall.O_RDWR, nil)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4096)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := r.Write(ctx, fd, uint64(i%256)*4096, data, nil); err != nil {
			b.Fatal(err)
		}
	}
}
