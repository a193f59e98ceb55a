package afr

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

func not(set []bool) []bool {
	o := make([]bool, len(set))
	for i, v := range set {
		o[i] = !v
	}
	return o
}

func and(a, b []bool) []bool {
	o := make([]bool, len(a))
	for i := range a {
		o[i] = a[i] && b[i]
	}
	return o
}

func or(a, b []bool) []bool {
	o := make([]bool, len(a))
	for i := range a {
		o[i] = a[i] || b[i]
	}
	return o
}

func clone(b []bool) []bool { return append([]bool(nil), b...) }

func first(ok []bool) int {
	for i, v := range ok {
		if v {
			return i
		}
	}
	return 0
}

func boolsOf(idx []int, n int) []bool {
	b := make([]bool, n)
	for _, i := range idx {
		b[i] = true
	}
	return b
}

func succeeded(rs []reply, set []bool) []bool {
	ok := make([]bool, len(rs))
	for i, rp := range rs {
		ok[i] = set[i] && rp.done && rp.err == nil
	}
	return ok
}

// answered returns the children of set that gave an answer of their own:
// a success or the brick's own op_errno. A failure on our side is no
// answer: a lost connection, a timeout, an interrupt, a malformed reply.
// Client quorum is about bricks that did not answer: when the answering
// bricks are enough and none succeeded, their errno is the caller's
// (afr_final_errno), not ENOTCONN.
func answered(rs []reply, set []bool) []bool {
	a := make([]bool, len(rs))
	for i, rp := range rs {
		a[i] = set[i] && rp.done && (rp.err == nil || ownErrno(rp.err))
	}
	return a
}
