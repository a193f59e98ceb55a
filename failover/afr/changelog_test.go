package afr

import (
	"testing"

	"github.com/brickfs/brickfs/brick/xdr"
)

// Vectors measured on real 10.3 reads (gluster-afr-dht.md Appendix B).
func TestSuperFastHash(t *testing.T) {
	for _, c := range []struct {
		gfid  string
		hash  uint32
		child uint32
	}{
		{"cd6721a5-e79f-4f60-a20a-06c4af9becb3", 0x962fa574, 1},
		{"6d396a0f-7ebc-4103-adca-86262eef576c", 0xe41176fe, 2},
		{"9bfee8f8-9f85-4763-9527-856e87f49ac1", 0x91893fb4, 0},
	} {
		g, err := xdr.ParseGFID(c.gfid)
		if err != nil {
			t.Fatal(err)
		}
		if h := superFastHash(g); h != c.hash || h%3 != c.child {
			t.Errorf("%s: hash %#x (child %d), want %#x (child %d)", c.gfid, h, h%3, c.hash, c.child)
		}
	}
}

func TestCounts(t *testing.T) {
	c := counts{1, -1, 2}
	b := c.bytes()
	if string(b) != "\x00\x00\x00\x01\xff\xff\xff\xff\x00\x00\x00\x02" {
		t.Fatalf("bytes %x", b)
	}
	back, ok := parseCounts(b)
	if !ok || back != c {
		t.Fatalf("round trip %v", back)
	}
	if _, ok := parseCounts(b[:11]); ok {
		t.Fatal("short value accepted")
	}
}
