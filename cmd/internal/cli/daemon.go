package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// The daemonizing parent re-executes itself with daemonEnv set and a pipe as
// fd 3; the child mounts and writes one line: "ok" or the error. The parent
// exits with the outcome, so `mount` returns only when the filesystem is live.
const daemonEnv = "BRICKFS_DAEMON_CHILD"

func isDaemonChild() bool { return os.Getenv(daemonEnv) != "" }

// mountTimeout bounds how long the parent waits for the child.
const mountTimeout = 90 * time.Second

// daemonize starts the mount daemon and waits for it to say whether the
// mount is live. The daemon writes "warn TEXT" lines for the user, then
// "ok" or "err TEXT".
func daemonize(prog string, m Mount, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "%s: cannot find own executable: %v\n", prog, err)
		return ExitFail
	}
	spec, err := json.Marshal(m)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitFail
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitFail
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return ExitFail
	}
	// The child reads its Mount from daemonEnv and ignores its arguments;
	// they name the spec and mount point so that ps, pgrep -f and the
	// integration harness (which finds FUSE daemons by mount point) can
	// tell which mount a daemon serves.
	cmd := exec.Command(exe, "mount", m.Spec, m.MountPoint)
	cmd.Env = append(os.Environ(), daemonEnv+"="+string(spec))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "%s: cannot start the mount daemon: %v\n", prog, err)
		return ExitFail
	}
	_ = w.Close()
	_ = devnull.Close()
	done := make(chan string, 1)
	go func() {
		br := bufio.NewReader(r)
		for {
			line, _ := br.ReadString('\n')
			line = strings.TrimSpace(line)
			if note, ok := strings.CutPrefix(line, "warn "); ok {
				fmt.Fprintf(stderr, "%s: warning: %s\n", prog, note)
				continue
			}
			done <- line
			return
		}
	}()
	select {
	case line := <-done:
		if line == "ok" {
			_ = cmd.Process.Release()
			return ExitOK
		}
		_ = cmd.Wait()
		line = strings.TrimPrefix(line, "err ")
		if line == "" {
			line = "the mount daemon exited without mounting; see the log file"
		}
		fmt.Fprintf(stderr, "%s: %s\n", prog, line)
		return ExitFail
	case <-time.After(mountTimeout):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		fmt.Fprintf(stderr, "%s: the mount did not come up within %v; see the log file\n", prog, mountTimeout)
		return ExitFail
	}
}

func daemonChild(stderr io.Writer) int {
	var m Mount
	if err := json.Unmarshal([]byte(os.Getenv(daemonEnv)), &m); err != nil {
		fmt.Fprintf(stderr, "brickfs: bad daemon arguments: %v\n", err)
		return ExitFail
	}
	_ = os.Unsetenv(daemonEnv)
	pipe := os.NewFile(3, "ready")
	if pipe == nil {
		return serve(m, nil, stderr)
	}
	// Nothing the daemon starts (the auto_unmount watcher) may hold the
	// pipe: the parent would wait for it.
	syscall.CloseOnExec(3)
	told := false
	ready := func(notes []string, err error) {
		if told {
			return
		}
		told = true
		for _, n := range notes {
			_, _ = fmt.Fprintln(pipe, "warn "+strings.ReplaceAll(n, "\n", " "))
		}
		msg := "ok"
		if err != nil {
			msg = "err " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		_, _ = fmt.Fprintln(pipe, msg)
		_ = pipe.Close()
	}
	code := serve(m, ready, stderr)
	if !told {
		ready(nil, errors.New("the mount daemon stopped before the mount was live; see the log file"))
	}
	return code
}
