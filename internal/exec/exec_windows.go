//go:build windows

package exec

import (
	"errors"
	"os"
	osexec "os/exec"
	"strings"
)

// setGroup does nothing on Windows: the standard library has no process
// groups there, and azcred uses no job objects. A tool's own child processes
// may outlive a killed tool on Windows.
func setGroup(*osexec.Cmd) {}

// killGroup kills the tool's process (not its children; see setGroup).
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

// workDir is the folder tools run in: %SYSTEMROOT%.
func workDir() (string, error) {
	dir := os.Getenv("SYSTEMROOT")
	if dir == "" {
		return "", errors.New("the SYSTEMROOT environment variable is not set, so there is no safe folder to run the tool in; set it to the Windows folder, such as C:\\Windows")
	}
	return dir, nil
}

// sameKey compares environment variable names, which are case-insensitive
// on Windows.
func sameKey(a, b string) bool { return strings.EqualFold(a, b) }

// isTextBusy reports whether starting failed because the executable was open
// for writing; Windows reports that differently and it is not retried.
func isTextBusy(error) bool { return false }
