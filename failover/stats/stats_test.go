package stats

import (
	"context"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// The layer counts every fop of the table: none passes by uncounted.
func TestStatsIntercepts(t *testing.T) {
	all := map[string]bool{}
	table := reflect.TypeOf((*fop.Fops)(nil)).Elem()
	for i := 0; i < table.NumMethod(); i++ {
		all[table.Method(i).Name] = true
	}
	foptest.CheckIntercepts(t, ".", "Stats", all, nil)
	if len(fopNames) != table.NumMethod() {
		t.Errorf("%d fop names for %d fops", len(fopNames), table.NumMethod())
	}
}

// The fop contract holds through the layer.
func TestStatsContract(t *testing.T) {
	foptest.Contract(t, New("v", foptest.NewMem("v-client-0")))
}

// Counts, errors by errno, latencies and bytes follow the fops.
func TestStatsFigures(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := New("v", m)
	ctx := context.Background()
	f, _, _, err := s.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, _, _, err := s.Write(ctx, f, uint64(i)*4096, make([]byte, 4096), nil); err != nil {
			t.Fatal(err)
		}
	}
	if b, _, err := s.Read(ctx, f, 0, 8192, nil); err != nil || len(b) != 8192 {
		t.Fatalf("read: %d bytes, %v", len(b), err)
	}
	m.Delay("STAT", 30*time.Millisecond)
	if _, _, err := s.Stat(ctx, foptest.GFID(1), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := s.Lookup(ctx, foptest.RootGFID, "nope", [16]byte{}, nil); fop.Errno(err) != syscall.ENOENT {
			t.Fatalf("lookup: %v", err)
		}
	}
	m.Refuse("WRITE", syscall.ENOSPC)
	if _, _, _, err := s.Write(ctx, f, 0, []byte("x"), nil); fop.Errno(err) != syscall.ENOSPC {
		t.Fatalf("write: %v", err)
	}
	fs := s.Figures()
	if fs.BytesWritten != 3*4096 || fs.BytesRead != 8192 {
		t.Errorf("bytes: read %d, written %d", fs.BytesRead, fs.BytesWritten)
	}
	by := map[string]fop.OneFopStats{}
	for _, o := range fs.Fops {
		by[o.Fop] = o
		var n uint64
		for _, b := range o.Buckets {
			n += b
		}
		if n != o.Count {
			t.Errorf("%s: %d in the buckets, count %d", o.Fop, n, o.Count)
		}
	}
	if w := by["WRITE"]; w.Count != 4 || w.Errors["ENOSPC"] != 1 || len(w.Errors) != 1 {
		t.Errorf("WRITE: %+v", w)
	}
	if l := by["LOOKUP"]; l.Count != 2 || l.Errors["ENOENT"] != 2 {
		t.Errorf("LOOKUP: %+v", l)
	}
	st := by["STAT"]
	// A loaded machine can make the 30 ms delay take longer: the STAT is
	// in bucket(30 ms) or one above it, never below.
	at := -1
	for i, n := range st.Buckets {
		if n != 0 {
			at = i
		}
	}
	if st.Count != 1 || st.Total < 30*time.Millisecond || at < bucket(30*time.Millisecond) || bucket(st.Total) != at {
		t.Errorf("STAT: %+v (30 ms falls in bucket %d, it is in %d)", st, bucket(30*time.Millisecond), at)
	}
	if _, ok := by["UNLINK"]; ok || by["CREATE"].Count != 1 || by["READ"].Count != 1 {
		t.Errorf("fops: %+v", fs.Fops)
	}
}

func TestBucket(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 0}, {25 * time.Microsecond, 0}, {26 * time.Microsecond, 1}, {50 * time.Microsecond, 1}, {51 * time.Microsecond, 2},
		{Buckets[numBuckets-1], numBuckets - 1}, {Buckets[numBuckets-1] + 1, numBuckets}, {time.Hour, numBuckets}} {
		if got := bucket(tc.d); got != tc.want {
			t.Errorf("bucket(%v) = %d, want %d", tc.d, got, tc.want)
		}
		if tc.want < numBuckets && tc.d > Buckets[tc.want] {
			t.Errorf("%v above its bucket's bound %v", tc.d, Buckets[tc.want])
		}
	}
}
