package fop

import "context"

// ZeroKeepSize zeroes [off, off+length) of one brick's file below its EOF
// and preallocates the rest, leaving the size alone: what
// fallocate(ZERO_RANGE|KEEP_SIZE) does on a local filesystem. The brick's
// ZEROFILL has no KEEP_SIZE variant (it is fallocate(ZERO_RANGE) and
// extends a file whose range crosses EOF), so the part past EOF gets
// FALLOCATE with flags 1 (KEEP_SIZE), sent first so that ENOSPC fails the
// call before anything is zeroed.
func ZeroKeepSize(ctx context.Context, b Fops, f *Fd, off, length uint64) error {
	st, _, err := b.Fstat(ctx, f, nil)
	if err != nil {
		return err
	}
	if end := off + length; end > st.Size {
		start := max(off, st.Size)
		if _, _, _, err := b.Fallocate(ctx, f, FallocKeepSize, start, end-start, nil); err != nil {
			return err
		}
	}
	if below := min(off+length, st.Size); below > off {
		_, _, _, err := b.Zerofill(ctx, f, off, below-off, nil)
		return err
	}
	return nil
}

// FallocKeepSize is FALLOC_FL_KEEP_SIZE: the only FALLOCATE flag a brick
// honours (any non-zero flags mean KEEP_SIZE to it).
const FallocKeepSize = 0x01
