package failover

import (
	"context"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/failover/stats"
)

type fakeKeepSizer struct{ calls int }

func (k *fakeKeepSizer) ZerofillKeepSize(context.Context, *fop.Fd, uint64, uint64) error {
	k.calls++
	return nil
}

// fallocate(ZERO_RANGE|KEEP_SIZE) carried out by a replica set, below the
// io-stats layer, is still counted there (as a FALLOCATE).
func TestZerofillKeepSizeCounted(t *testing.T) {
	st := stats.New("v", foptest.NewMem("v-client-0"))
	zk := &fakeKeepSizer{}
	v := &Volume{Fops: st, stats: st, zk: zk}
	if err := v.ZerofillKeepSize(context.Background(), &fop.Fd{}, 0, 4096); err != nil {
		t.Fatal(err)
	}
	if zk.calls != 1 {
		t.Fatalf("the replica set was called %d times", zk.calls)
	}
	for _, f := range st.Figures().Fops {
		if f.Fop == "FALLOCATE" && f.Count == 1 {
			return
		}
	}
	t.Errorf("not counted: %+v", st.Figures().Fops)
}
