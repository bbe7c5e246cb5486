//go:build unix

package exec

import (
	"errors"
	osexec "os/exec"
	"syscall"
)

// setGroup starts the tool as the leader of a new process group, so that
// killGroup reaches every process it starts (az is a script that starts
// Python).
func setGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the tool's process group. A group that is already gone
// is not an error.
func killGroup(cmd *osexec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// workDir is the folder tools run in: the root, which exists everywhere and
// holds nothing a tool could pick up by accident.
func workDir() (string, error) { return "/", nil }

func sameKey(a, b string) bool { return a == b }

// isTextBusy reports whether starting failed because the executable was open
// for writing (ETXTBSY).
func isTextBusy(err error) bool { return errors.Is(err, syscall.ETXTBSY) }
