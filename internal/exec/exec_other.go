//go:build !unix && !windows

package exec

import (
	"errors"
	"os"
	osexec "os/exec"
)

func setGroup(*osexec.Cmd) {}

func killGroup(cmd *osexec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := cmd.Process.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func workDir() (string, error) { return "/", nil }

func sameKey(a, b string) bool { return a == b }

// isTextBusy reports whether starting failed because the executable was open
// for writing; not detected on this platform.
func isTextBusy(error) bool { return false }
