package brick

import (
	"testing"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// TestClientContract runs the fop contract through the brick client's
// wire code: the fake decodes every request, carries it out on an
// in-memory brick and encodes the answer as a brick does, so a field the
// client encodes or decodes wrongly shows as a broken contract.
func TestClientContract(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	fk.ServeFops(foptest.NewMem("fake-client-0"))
	foptest.Contract(t, startClient(t, fk, nil))
}
