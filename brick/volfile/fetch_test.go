package volfile

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/xdr"
)

func getspecReply(ret, errno int32, spec string, x xdr.OldDict) []byte {
	e := xdr.NewEncoder(64)
	e.Int32(ret)
	e.Int32(errno)
	e.String(spec)
	e.Opaque(x.Marshal())
	return e.B
}

func TestDecodeGetSpec(t *testing.T) {
	vol := "volume v-client-0\n type protocol/client\nend-volume\n"
	b, peers, err := DecodeGetSpec(getspecReply(int32(len(vol)), 0, vol,
		xdr.OldDict{}.Set("cluster.brick-vol-servers", "127.1.2.1:24007 127.1.2.2:24007 ")))
	if err != nil || string(b) != vol {
		t.Fatalf("got %q, %v", b, err)
	}
	if len(peers) != 2 || peers[1].Host != "127.1.2.2" || peers[1].Port != 24007 {
		t.Fatalf("peers %+v", peers)
	}
	cases := []struct {
		errno int32
		want  string
	}{
		{2, "no such volume"},
		{95, "newer client op-version"},
		{13, "permission denied"},
	}
	for _, c := range cases {
		_, _, err := DecodeGetSpec(getspecReply(-1, c.errno, "", nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("errno %d: %v, want %q", c.errno, err, c.want)
		}
	}
	if _, _, err := DecodeGetSpec(getspecReply(0, 0, "", nil)); err == nil {
		t.Error("empty volfile accepted")
	}
	if _, _, err := DecodeGetSpec([]byte{0, 0}); err == nil {
		t.Error("short reply accepted")
	}
}

func TestEncodeGetSpec(t *testing.T) {
	// flags 1, key "/one" (4 bytes), then the 59-byte old dict of the
	// native client's capture padded to 60.
	b := EncodeGetSpec("/one")
	d := xdr.NewDecoder(b)
	if d.Uint32() != 1 || d.String(100) != "/one" {
		t.Fatalf("header of %x", b)
	}
	x, err := xdr.UnmarshalOldDict(d.Opaque(1000))
	if err != nil || d.Len() != 0 {
		t.Fatalf("xdata: %v, %d left", err, d.Len())
	}
	if v, _ := x.Get("max-op-version"); v != "100000" {
		t.Fatalf("max-op-version %q", v)
	}
}

func TestFetchNamesEveryServer(t *testing.T) {
	// A listener that accepts and never answers, and a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	silent := Server{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	refused := Server{Host: "127.0.0.1", Port: closedPort}
	_, err = Fetch(context.Background(), []Server{refused, silent}, "vol", FetchOptions{Timeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("fetch from dead servers succeeded")
	}
	msg := err.Error()
	for _, want := range []string{refused.String() + ": connection refused", silent.String() + ": timed out", "backup-volfile-servers"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if errors.Is(err, ErrNoVolume) {
		t.Error("dead servers reported as a missing volume")
	}
}

func FuzzDecodeGetSpec(f *testing.F) {
	f.Add(getspecReply(10, 0, "volume x\n", nil))
	f.Add(getspecReply(-1, 2, "", nil))
	f.Add(getspecReply(3, 22, "abc", xdr.OldDict{}.Set("cluster.brick-vol-servers", "h:1 [::1]:24007 bad")))
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, _, err := DecodeGetSpec(b)
		if err == nil && len(spec) == 0 {
			t.Fatal("success with an empty volfile")
		}
	})
}
