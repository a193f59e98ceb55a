package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lockHelperEnv, when set, makes the test binary a lock holder: a second
// process for the POSIX lock tests, since POSIX locks of one process never
// conflict with each other.
const lockHelperEnv = "BRICKFS_IT_LOCK_HELPER"

// lockHelperMain reads one command per line from stdin and answers one line
// on stdout ("ok", "err ERRNO" or a GETLK result):
//
//	open PATH          open PATH read-write
//	setlk w|r START LEN    F_SETLK
//	setlkw w|r START LEN   F_SETLKW (answers when granted)
//	getlk w|r START LEN    F_GETLK: "type T pid P start S len L"
//	close              close the file (drops its POSIX locks)
//	exit
func lockHelperMain() int {
	in := bufio.NewScanner(os.Stdin)
	var f *os.File
	reply := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	for in.Scan() {
		fs := strings.Fields(in.Text())
		if len(fs) == 0 {
			continue
		}
		switch fs[0] {
		case "open":
			var err error
			if f, err = os.OpenFile(fs[1], os.O_RDWR, 0); err != nil {
				reply("err %v", err)
				continue
			}
			reply("ok")
		case "setlk", "setlkw", "getlk":
			if f == nil || len(fs) != 4 {
				reply("err bad command %q", in.Text())
				continue
			}
			lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
			if fs[1] == "r" {
				lk.Type = syscall.F_RDLCK
			}
			lk.Start, _ = strconv.ParseInt(fs[2], 10, 64)
			lk.Len, _ = strconv.ParseInt(fs[3], 10, 64)
			cmd := map[string]int{"setlk": syscall.F_SETLK, "setlkw": syscall.F_SETLKW, "getlk": syscall.F_GETLK}[fs[0]]
			if err := syscall.FcntlFlock(f.Fd(), cmd, &lk); err != nil {
				var errno syscall.Errno
				if errors.As(err, &errno) {
					reply("err %d %v", int(errno), errno)
				} else {
					reply("err 0 %v", err)
				}
				continue
			}
			if fs[0] == "getlk" {
				reply("type %d pid %d start %d len %d", lk.Type, lk.Pid, lk.Start, lk.Len)
				continue
			}
			reply("ok")
		case "close":
			if f != nil {
				f.Close()
				f = nil
			}
			reply("ok")
		case "exit":
			return 0
		default:
			reply("err unknown command %q", fs[0])
		}
	}
	return 0
}

// lockHelper is a running lock-holder process.
type lockHelper struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out chan string
	Pid int
}

// startLockHelper re-executes the test binary as a lock holder; it is
// stopped in t.Cleanup.
func startLockHelper(t *testing.T) *lockHelper {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), lockHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start lock helper: %v", err)
	}
	h := &lockHelper{t: t, cmd: cmd, in: in, out: make(chan string, 16), Pid: cmd.Process.Pid}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.out <- sc.Text()
		}
		close(h.out)
	}()
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return h
}

// send writes a command; reply waits for the answer.
func (h *lockHelper) send(cmd string) {
	h.t.Helper()
	if _, err := fmt.Fprintln(h.in, cmd); err != nil {
		h.t.Fatalf("lock helper: %v", err)
	}
}

func (h *lockHelper) reply(timeout time.Duration) (string, bool) {
	select {
	case line, ok := <-h.out:
		if !ok {
			return "", false
		}
		return line, true
	case <-time.After(timeout):
		return "", false
	}
}

// do sends a command and fails the test unless the answer comes within 30s
// and starts with want.
func (h *lockHelper) do(cmd, want string) string {
	h.t.Helper()
	h.send(cmd)
	got, ok := h.reply(30 * time.Second)
	if !ok {
		h.t.Fatalf("lock helper: no answer to %q within 30s", cmd)
	}
	if !strings.HasPrefix(got, want) {
		h.t.Fatalf("lock helper: %q answered %q, want %q...", cmd, got, want)
	}
	return got
}
