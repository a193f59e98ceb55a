package stats

import (
	"context"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// BenchmarkWrite is a 4 KiB write to an in-memory brick, directly (bare)
// and through the io-stats layer (stats): the difference is what counting
// and timing each fop costs.
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(fop.Subvolume) fop.Subvolume
	}{
		{"bare", func(s fop.Subvolume) fop.Subvolume { return s }},
		{"stats", func(s fop.Subvolume) fop.Subvolume { return New("v", s) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			v := tc.wrap(foptest.NewMem("v-client-0"))
			ctx := context.Background()
			f, _, _, err := v.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 4096)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, _, err := v.Write(ctx, f, uint64(i%256)*4096, data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
