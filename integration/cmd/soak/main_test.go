package main

import (
	"errors"
	"testing"

	"github.com/brickfs/brickfs/integration"
)

func TestTally(t *testing.T) {
	for _, tc := range []struct {
		name       string
		r          integration.FioResult
		errs, mism int64
	}{
		{"clean", integration.FioResult{WriteIOs: 10}, 0, 0},
		{"mismatch", integration.FioResult{Err: eilseq, ExitErr: errors.New("exit status 1"),
			Stderr: "verify: bad magic header 8abe, wanted acca at file f offset 409600, length 4096"}, 0, 1},
		{"mismatch, no message", integration.FioResult{Err: eilseq}, 0, 1},
		{"crc", integration.FioResult{Err: eilseq, Stderr: "crc32c: verify failed at file f offset 0, length 4096"}, 0, 1},
		{"EIO", integration.FioResult{Err: 5, ExitErr: errors.New("exit status 1")}, 1, 0},
		{"fio died", integration.FioResult{ExitErr: errors.New("signal: killed")}, 1, 0},
		{"continued errors", integration.FioResult{TotalErr: 3}, 3, 0},
	} {
		errs, mism, note := tally(tc.r)
		if errs != tc.errs || mism != tc.mism {
			t.Errorf("%s: tally = %d errors, %d mismatches; want %d, %d", tc.name, errs, mism, tc.errs, tc.mism)
		}
		if (note != "") != (tc.errs+tc.mism > 0) {
			t.Errorf("%s: note %q", tc.name, note)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"128M": 128 << 20, "1G": 1 << 30, "512K": 512 << 10, "4096": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1G", "1T", "x"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}
