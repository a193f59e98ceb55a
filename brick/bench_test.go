package brick

import (
	"bytes"
	"context"
	"testing"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// BenchmarkCallRoundTrip measures one 4 KiB WRITE and one 4 KiB READ through
// a Client and the fake brick over loopback TCP, allocations included.
func BenchmarkCallRoundTrip(b *testing.B) {
	const size = 4096
	fk := bricktest.New(b, bricktest.Options{})
	st := &xdr.Iatt{GFID: g1, Ino: g1.Ino(), Mode: 0100644, Nlink: 1, Size: size}
	writeRsp := bricktest.IattRsp(size, 0, 2, st)
	data := bytes.Repeat([]byte{0x5a}, size)
	readRsp := bricktest.ReadRsp(st, data)
	fk.Handle(opWrite, fixed(writeRsp))
	fk.Handle(opRead, fixed(readRsp))
	c := startClient(b, fk, nil)
	ctx := context.Background()
	f, _, err := c.Open(ctx, g1, 2, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Write4K", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := c.Write(ctx, f, 0, data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Read4K", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			got, _, err := c.Read(ctx, f, 0, size, nil)
			if err != nil || len(got) != size {
				b.Fatal(err)
			}
		}
	})
}
